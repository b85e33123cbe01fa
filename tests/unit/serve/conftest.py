"""Tiny random chat models saved as HF folders, a run directory of them, and a learner's
checkpoint folder: what the chat server serves, built in seconds, no downloads."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import chat_run, save_chat_model

from collapselab.serve import ServeConfig, create_app


@pytest.fixture(scope="session")
def chat_model_dir(tmp_path_factory) -> Path:
    """A tiny instruct model: its tokenizer has a chat template."""
    return save_chat_model(tmp_path_factory.mktemp("models") / "tiny-chat", chat=True)


@pytest.fixture(scope="session")
def base_model_dir(tmp_path_factory) -> Path:
    """A tiny base model: no chat template, so the plain transcript format is used."""
    return save_chat_model(tmp_path_factory.mktemp("models") / "tiny-base", chat=False, seed=1)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return chat_run(tmp_path_factory.mktemp("run"))


def config(**blocks) -> ServeConfig:
    return ServeConfig.model_validate(blocks)


@pytest.fixture
def client_for():
    """client_for(cfg) -> a TestClient with the app's lifespan running (closed after the test)."""
    from fastapi.testclient import TestClient

    opened = []

    def make(cfg: ServeConfig):
        client = TestClient(create_app(cfg))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for c in opened:
        c.__exit__(None, None, None)
