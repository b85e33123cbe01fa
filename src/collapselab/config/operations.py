"""Config blocks of how a run is carried out and watched, not what it computes: the sweep
grid (`sweep:`), trackers (`tracking:`), hub push (`hub:`) and notifications (`notify:`).

They live with the other config blocks; the listeners that act on them (`collapselab.sweep`,
`tracking`, `hub`, `notify`) import them from here.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, model_validator

from collapselab.config.loading import Block, FolderName

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # an environment variable's name
HUB_REPO_ID = r"^([\w.\-]+/)?[\w.\-]+$"  # the Hub's repo ids: [owner/]name


class TrialResources(Block):
    cpus: float = Field(1.0, gt=0, description="CPUs each trial reserves on Ray (num_cpus); its torch threads too (at least 1).")
    gpus: float = Field(0.0, ge=0, description="GPUs each trial reserves (num_gpus); a fraction such as 0.5 packs two trials onto one GPU.")

class SweepBlock(Block):
    name: FolderName | None = Field(
        None, pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Sweep name: its folder <output_dir>/sweeps/<name> and the prefix of its trials' run ids (default: <experiment>-<hash of the base config>).",
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Config key path -> values (as for --set); every combination is one trial. `collapselab sweep --grid KEY=V1,V2` adds or replaces a key.",
    )
    resources: TrialResources = Field(default_factory=TrialResources, description="What each trial reserves on the Ray cluster.")
    address: str | None = Field(None, min_length=1, description="Ray cluster to run on, as <head-ip>:6379 from a node of the cluster; null starts a local Ray on this machine (or joins $RAY_ADDRESS, as Ray does).")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray (null: every core of this machine); not used with an address.")
    metric: str | None = Field(None, min_length=1, description="Metric the sweep report plots against the swept key (default: the task's primary metric, lm perplexity, qa refinery.success.metric).")


class MlflowBlock(Block):
    tracking_uri: str = Field("sqlite:///mlflow.db", min_length=1, description="MLflow tracking URI: a SQLite file (works offline), a tracking server (http://host:5000), or a folder (./mlruns, with MLFLOW_ALLOW_FILE_STORE=true).")
    experiment: str | None = Field(None, min_length=1, description="MLflow experiment name (default: experiment.name).")

class WandbBlock(Block):
    project: str = Field("collapselab", min_length=1, description="W&B project.")
    entity: str | None = Field(None, min_length=1, description="W&B entity (user or team); null: the default one.")
    mode: Literal["offline", "online"] = Field("offline", description="offline writes run files to sync later (`wandb sync`), with no network.")
    dir: str | None = Field(None, min_length=1, description="Folder of W&B's run files (default: the run directory).")

class TrackingBlock(Block):
    mlflow: MlflowBlock | None = Field(None, description="Log to MLflow.")
    wandb: WandbBlock | None = Field(None, description="Log to Weights & Biases.")
    drain_s: float = Field(120.0, ge=0, description="When the run ends, how long it waits for tracker calls still queued; the rest are reported as not logged.")


REPO_ID_ENV = "HUGGINGFACE_REPO_ID"  # the knowledge-collapse framework's variable, read the same way


class HubBlock(Block):
    repo_id: str = Field(pattern=HUB_REPO_ID, description=f"Hub model repository to push to, e.g. user/collapse-runs (created, private, if missing); default: ${REPO_ID_ENV}.")
    prefix: str = Field("", description="Folder in the repository above <arm>/seed-<s>/gen-<g>; {run_id} and {experiment} are filled in (a sweep needs {run_id}).")
    private: bool = Field(True, description="Create the repository private.")
    endpoint: str | None = Field(None, min_length=1, description="Hub URL (default: $HF_ENDPOINT, else https://huggingface.co), e.g. a self-hosted Hub.")
    token_env: str = Field("HF_TOKEN", pattern=ENV_NAME, description="Environment variable holding a write token.")
    retries: int = Field(3, ge=0, description="Retries of a failed upload (pauses of 1, 2, 4 ... s) before it is reported as not uploaded.")
    drain_s: float = Field(600.0, ge=0, description="When the run ends, how long it waits for uploads still queued; the rest are reported as not uploaded.")

    @model_validator(mode="before")
    @classmethod
    def _repo_from_environment(cls, data: Any) -> Any:
        # Read when the config is loaded, so the resolved config (config.yaml, its hash)
        # names the repository the run pushes to.
        if isinstance(data, dict) and "repo_id" not in data:
            env = os.environ.get(REPO_ID_ENV, "").strip()
            if not env:
                raise ValueError(f"hub.repo_id is not given and ${REPO_ID_ENV} is not set")
            return {**data, "repo_id": env}
        return data


EventName = Literal["run_started", "generation_started", "generation_finished", "generation_failed", "run_finished"]

class WebhookBlock(Block):
    url: str | None = Field(None, min_length=1, description="URL each message is POSTed to as JSON: {'text': ...} (Slack-compatible) plus a 'collapselab' object with the event's fields; null: $COLLAPSELAB_WEBHOOK_URL (webhook URLs are often secrets).")

class TelegramBlock(Block):
    token_env: str = Field("TELEGRAM_BOT_TOKEN", pattern=ENV_NAME, description="Environment variable holding the bot token.")
    chat_id_env: str = Field("TELEGRAM_CHAT_ID", pattern=ENV_NAME, description="Environment variable holding the chat id.")
    api_url: str = Field("https://api.telegram.org", min_length=1, description="Bot API server (a local Bot API server works too).")

class NotifyBlock(Block):
    webhook: WebhookBlock | None = Field(None, description="Send to a webhook.")
    telegram: TelegramBlock | None = Field(None, description="Send to a Telegram chat.")
    events: list[EventName] = Field(
        default_factory=lambda: ["run_started", "generation_started", "generation_finished", "generation_failed", "run_finished"], min_length=1,
        description="Which events send a message (a sweep: [generation_failed, run_finished] keeps a chat quiet).",
    )
    max_messages: int = Field(20, ge=1, description="Most generation started/finished messages one run sends; later ones are held back (the run-started message, failures and the run-finished message are always sent).")
    metrics: list[str] | None = Field(None, description="Metrics a finished-generation message shows, by their registry names (default: those of perplexity, reference_perplexity, exact_match, f1, has_ans_f1, mmlu_accuracy, distinct_2 present).")
    timeout_s: float = Field(10.0, gt=0, description="Seconds one send may take.")
    retries: int = Field(2, ge=0, description="Retries of a failed send before it is reported as not sent.")
    drain_s: float = Field(30.0, ge=0, description="When the run ends, how long it waits for messages still queued; the rest are reported as not sent.")

    @model_validator(mode="after")
    def _somewhere(self) -> NotifyBlock:
        if self.webhook is None and self.telegram is None:
            raise ValueError("notify: give webhook, telegram or both")
        return self
