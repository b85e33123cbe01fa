"""`collapselab serve`: chat with any model, any generation of a run, or a learner's newest checkpoint."""

from __future__ import annotations

import typer


def serve(
    config: str = typer.Option(None, "--config", help="Serve config: a YAML file, or a ready one by name, shipped with the package (secure: API keys, rate limits, bounded queue; configs/serve/secure.yaml); flags override it."),
    model: str = typer.Option(None, "--model", help="A model name as model.name takes it (default: smollm2-135m-instruct)."),
    run: str = typer.Option(None, "--run", help="A run directory or run id: serve its generations' models."),
    arm: str = typer.Option(None, "--arm", help="With --run: the arm answering by default."),
    generation: int = typer.Option(None, "--generation", help="With --run: the generation answering by default (default: the last finished)."),
    seed: int = typer.Option(None, "--seed", help="With --run: which seed's generations."),
    learner: str = typer.Option(None, "--learner", help="A learner's run directory: serve its newest checkpoint, switching as it publishes."),
    host: str = typer.Option(None, "--host", help="Address to listen on (default 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default 8000)."),
    api_keys_file: str = typer.Option(None, "--api-keys-file", help="File of API keys, one a line: requests then need Authorization: Bearer <key>."),
    api_keys_env: str = typer.Option(None, "--api-keys-env", help="Environment variable holding comma-separated API keys."),
    rate_per_minute: float = typer.Option(None, "--rate-per-minute", help="Requests per minute per key (429 beyond)."),
    allow_unauthenticated: bool = typer.Option(False, "--allow-unauthenticated", help="Listen on a non-loopback --host without API keys (anyone who reaches the port may use the server)."),
    max_batch: int = typer.Option(None, "--max-batch", help="Most requests decoded together."),
    max_queue: int = typer.Option(None, "--max-queue", help="Requests waiting at most (503 beyond)."),
    db: str = typer.Option(None, "--db", help="Results database URL (to find a run given by id)."),
) -> None:
    """Serve a chat API, an OpenAI-compatible API and the chat page at http://HOST:PORT/."""
    from collapselab.config.files import resolve_config, serve_configs_dir
    from collapselab.serve import load_serve_config
    from collapselab.serve import serve as run_server

    overrides = {
        "source.model": model, "source.run": run, "source.arm": arm, "source.generation": generation,
        "source.seed": seed, "source.learner": learner, "source.db": db, "host": host, "port": port,
        "security.api_keys_file": api_keys_file, "security.api_keys_env": api_keys_env,
        "security.rate_per_minute": rate_per_minute, "batching.max_batch": max_batch, "batching.max_queue": max_queue,
        "security.allow_unauthenticated": allow_unauthenticated or None,  # not given: the YAML's, else off
    }
    # Named errors reach the CLI's one handler (one line, their exit code).
    path = resolve_config(config, ready=serve_configs_dir()) if config is not None else None
    run_server(load_serve_config(path, overrides))


def register(app: typer.Typer) -> None:
    app.command()(serve)
