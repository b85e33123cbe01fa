"""The `sweep:` config block: the grid of overrides and what each trial reserves on Ray."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TrialResources(_Block):
    cpus: float = Field(1.0, gt=0, description="CPUs each trial reserves on Ray (num_cpus); its torch threads too (at least 1).")
    gpus: float = Field(0.0, ge=0, description="GPUs each trial reserves (num_gpus); a fraction such as 0.5 packs two trials onto one GPU.")


class SweepBlock(_Block):
    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.\-]+$",
        description="Sweep name: its folder <output_dir>/sweeps/<name> and the prefix of its trials' run ids (default: <experiment>-<hash of the base config>).",
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Config key path -> values (as for --set); every combination is one trial. `collapselab sweep --grid KEY=V1,V2` adds or replaces a key.",
    )
    resources: TrialResources = Field(default_factory=TrialResources, description="What each trial reserves on the Ray cluster.")
    address: str | None = Field(None, description="Ray cluster to run on, as <head-ip>:6379 from a node of the cluster; null starts a local Ray on this machine (or joins $RAY_ADDRESS, as Ray does).")
    num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray (null: every core of this machine); not used with an address.")
    metric: str | None = Field(None, description="Metric the sweep report plots against the swept key (default: the task's primary metric, lm perplexity, qa refinery.success.metric).")
