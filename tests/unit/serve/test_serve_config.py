"""The serve config: YAML and flags (flags win), unknown keys and bad values named, shipped
serve configs valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from collapselab.serve.config import DEFAULT_MODEL, ServeConfigError, load_serve_config

SHIPPED = sorted((Path(__file__).resolve().parents[3] / "configs" / "serve").glob("*.yaml"))


def test_flags_override_yaml_and_defaults_fill_in(tmp_path):
    path = tmp_path / "serve.yaml"
    path.write_text("port: 9000\nsecurity:\n  rate_per_minute: 30\n")
    cfg = load_serve_config(path, {"port": 9100, "source.model": None, "batching.max_batch": 4})
    assert cfg.port == 9100 and cfg.security.rate_per_minute == 30 and cfg.batching.max_batch == 4
    assert cfg.source.model is None and cfg.security.cors_origins == []  # CORS off by default
    from collapselab.serve.pool import ModelPool

    pool = ModelPool(cfg.source)  # no model, run or learner: the pretrained instruct model
    assert pool.default_id == DEFAULT_MODEL == "smollm2-135m-instruct" and pool.ids() == [DEFAULT_MODEL]


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("security:\n  api_key_file: k\n", {}, r"unknown key 'security.api_key_file'"),
        ("sampling:\n  temperature: 3\n", {}, r"sampling.temperature"),
        ("", {"source.model": "x", "source.run": "y"}, r"one of model, run, learner"),
        ("", {"source.generation": 2}, r"only meaningful with source.run"),
        ("batching:\n  max_queue: 0\n", {}, r"batching.max_queue"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, overrides, message):
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(ServeConfigError, match=message):
        load_serve_config(path, overrides)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_serve_configs_validate(path):
    cfg = load_serve_config(path, {})
    assert cfg.security.api_keys_env or cfg.security.api_keys_file


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "", "my-laptop.example"])
def test_a_server_on_the_network_needs_keys_or_an_explicit_flag(host):
    with pytest.raises(ServeConfigError, match=rf"host: {host!r} is reachable from the network and no API key is set"):
        load_serve_config(None, {"host": host})
    assert load_serve_config(None, {"host": host, "security.api_keys_env": "LAB_KEYS"}).host == host
    assert load_serve_config(None, {"host": host, "security.allow_unauthenticated": True}).security.allow_unauthenticated


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_no_keys(host):
    assert load_serve_config(None, {"host": host}).host == host
