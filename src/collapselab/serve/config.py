"""The chat server's config: one pydantic block per concern, read from YAML and/or CLI flags.

Precedence is the project's: CLI flag > YAML > default. Every security feature is off until
the config turns it on (no keys: no auth; no rate: no limit), except the body and prompt
limits, which always hold, and one refusal: a server reachable from the network (a host that
is not loopback) without API keys does not start unless `security.allow_unauthenticated` says
so (`--allow-unauthenticated`), as Jupyter refuses to listen on 0.0.0.0 without a token.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from collapselab.config.loading import Block, apply_override, model_from_dict, read_config_file
from collapselab.errors import CollapselabError

DEFAULT_MODEL = "smollm2-135m-instruct"


class ServeConfigError(CollapselabError, ValueError):
    """A serve config file or flag is invalid; the message names the key and the value."""


class SourceBlock(Block):
    model: str | None = Field(None, description=f"A model name as model.name takes it (catalogue name, local folder, $COLLAPSELAB_MODELS/<name>); default {DEFAULT_MODEL!r} when no run or learner is given.")
    run: str | None = Field(None, description="A run directory (or a run id recorded in the database): serve its generations' saved models.")
    arm: str | None = Field(None, description="With run: the arm answering by default (default: the run's first arm).")
    generation: int | None = Field(None, ge=0, description="With run: the generation answering by default (default: the arm's last finished one).")
    seed: int | None = Field(None, description="With run: the seed's generations (default: the run's first seed).")
    learner: str | None = Field(None, description="A learner's run directory: serve the newest checkpoint it published, switching when it publishes another.")
    db: str | None = Field(None, description="Results database URL used to find a run given by id.")

    @model_validator(mode="after")
    def _one_source(self) -> SourceBlock:
        given = [k for k in ("model", "run", "learner") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"source: give one of model, run, learner, got {given}")
        if self.run is None and (self.arm is not None or self.generation is not None or self.seed is not None):
            raise ValueError("source.arm / generation / seed: only meaningful with source.run")
        return self


class BatchingBlock(Block):
    max_batch: int = Field(16, ge=1, description="Most requests decoded together in one batch.")
    wait_ms: float = Field(10.0, ge=0, description="How long the scheduler waits for more requests to join a batch once one is waiting.")
    max_queue: int = Field(64, ge=1, description="Requests waiting to be decoded; one more answers 503 with Retry-After.")
    batch_tokens: int = Field(16384, ge=64, description="Token budget of one decoding batch (prompt + new tokens), passed to generate.")
    max_loaded_models: int = Field(2, ge=1, description="Models held in memory at once (compare mode needs 2); the least recently used is dropped.")
    reload_interval_s: float = Field(2.0, gt=0, description="How often the learner's `latest` pointer is checked for a new checkpoint.")


class SamplingBlock(Block):
    temperature: float = Field(0.7, ge=0, le=2, description="Default sampling temperature (0 = greedy).")
    top_p: float = Field(0.95, gt=0, le=1, description="Default nucleus mass.")
    top_k: int = Field(0, ge=0, description="Default top-k (0 = off).")
    max_new_tokens: int = Field(128, ge=1, description="Default reply length in tokens.")
    max_new_tokens_limit: int = Field(512, ge=1, description="Largest max_tokens / max_length a request may ask for.")
    system_prompt: str | None = Field(None, description="System message put before every chat (instruct models).")

    @model_validator(mode="after")
    def _default_within_limit(self) -> SamplingBlock:
        if self.max_new_tokens > self.max_new_tokens_limit:
            raise ValueError(f"sampling.max_new_tokens: {self.max_new_tokens} exceeds sampling.max_new_tokens_limit {self.max_new_tokens_limit}")
        return self


class SecurityBlock(Block):
    api_keys_file: str | None = Field(None, description="File of API keys, one per line (# comments); requests then need Authorization: Bearer <key>.")
    api_keys_env: str | None = Field(None, description="Environment variable holding comma-separated API keys (added to the file's).")
    rate_per_minute: float | None = Field(None, gt=0, description="Requests per minute per API key (per client address without keys): at most this many in any 60 s; the next answers 429 with Retry-After. None = no limit.")
    rate_burst: int | None = Field(None, ge=1, description="At most this many requests at once, refilled at the per-minute rate (None: the whole minute's count may come at once).")
    max_body_bytes: int = Field(65536, ge=256, description="Largest request body; a larger one answers 413.")
    max_prompt_tokens: int = Field(2048, ge=1, description="Longest prompt (history included) in tokens; longer answers 400 naming the field.")
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS (empty = CORS off).")
    allow_unauthenticated: bool = Field(False, description="Listen on an address other than loopback without API keys: anyone who reaches the port may use the server. Off: such a server refuses to start.")


class ServeConfig(Block):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="Port to listen on (0 = any free port).")
    source: SourceBlock = Field(default_factory=SourceBlock, description="Which model answers.")
    batching: BatchingBlock = Field(default_factory=BatchingBlock, description="How concurrent requests are batched and queued.")
    sampling: SamplingBlock = Field(default_factory=SamplingBlock, description="Default and largest sampling settings.")
    security: SecurityBlock = Field(default_factory=SecurityBlock, description="API keys, rate limit, body and prompt limits, CORS.")
    log_level: str = Field("info", description="uvicorn log level.")

    @model_validator(mode="after")
    def _no_open_network_server(self) -> ServeConfig:
        s = self.security
        if not is_loopback(self.host) and not (s.api_keys_file or s.api_keys_env) and not s.allow_unauthenticated:
            raise ValueError(
                f"host: {self.host!r} is reachable from the network and no API key is set, so anyone who reaches port "
                f"{self.port} could use the server; give security.api_keys_file or security.api_keys_env "
                "(--api-keys-file, --api-keys-env), or security.allow_unauthenticated: true (--allow-unauthenticated) "
                "to serve without keys"
            )
        return self


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only: localhost, 127.0.0.0/8, ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost, or "" (every interface)
        return False


def load_serve_config(path: Path | None, overrides: dict[str, Any]) -> ServeConfig:
    """YAML file (optional; an empty one is all defaults) with `overrides` (dotted key ->
    value, from CLI flags; None: not given) on top.

    Raises:
        ServeConfigError: The file cannot be read or the config is invalid; names the file
            (or "serve flags") and the key.
    """
    data = read_config_file(path, error=ServeConfigError, empty_ok=True) if path is not None else {}
    for key, value in overrides.items():
        if value is not None:
            apply_override(data, key.split("."), value, error=ServeConfigError, name=f"serve flags: {key}")
    return model_from_dict(ServeConfig, data, str(path) if path else "serve flags", error=ServeConfigError)
