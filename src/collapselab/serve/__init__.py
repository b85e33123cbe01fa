"""The chat server: any generation's model behind a chat API, an OpenAI-compatible API and a
web page, with batched decoding, API keys, limits and hot reload of a learner's checkpoints.

`create_app(cfg)` builds the app (tests drive it with FastAPI's TestClient); `serve(cfg)`
runs it. fastapi and uvicorn are imported by those calls, not by this package.
"""

from __future__ import annotations

from collapselab.serve.app import create_app as build
from collapselab.serve.app import serve as run
from collapselab.serve.config import ServeConfig, load_serve_config


def create_app(cfg: ServeConfig, pool=None):
    return build(cfg, pool)


def serve(cfg: ServeConfig) -> None:
    run(cfg)


__all__ = ["ServeConfig", "create_app", "load_serve_config", "serve"]
