"""The long commands the kill schedule (tests/killing.py) is run on, each built twice in a
folder of its own: once to run uninterrupted, once to be killed and run again; and how to
compare what the two produced. The tests run them small (tests/unit/reliability), the
benchmark large (benchmarks/kill_schedule.py); `scale` says how large.

Each pair runs the same config file from a different working folder (outputs under the
relative `runs/`), so the two configs hash the same and only the folder differs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from killing import (
    Command,
    Comparison,
    Schedule,
    collapselab_command,
    compare_outputs,
    compare_rows,
    database_rows,
    primary_keys,
)
from tiny import save_chat_model, tiny_config, tiny_corpus, write_config


@dataclass
class Target:
    """One command to kill: its uninterrupted twin, and the comparison of the two."""

    name: str
    clean: Command
    killed: Command
    clean_dir: Path  # the working folder of each twin
    killed_dir: Path
    urls: tuple[str, str]  # each twin's results database
    extra_checks: list[Callable[[Comparison], None]] = field(default_factory=list)
    whole_tree: bool = False  # compare all of runs/ and every run's rows (a sweep's several runs)

    def compare(self) -> Comparison:
        """Everything the killed twin produced against the clean twin's: its one run directory
        (a second one, or none, is a difference), its rows, and the target's own checks."""
        out = Comparison()
        if self.whole_tree:
            compare_outputs(self.clean_dir / "runs", self.killed_dir / "runs", into=out)
            compare_rows(database_rows(self.urls[0], root=self.clean_dir / "runs"),
                         database_rows(self.urls[1], root=self.killed_dir / "runs"), keys=primary_keys(), into=out)
            for check in self.extra_checks:
                check(out)
            return out
        clean, killed = run_dirs(self.clean_dir / "runs"), run_dirs(self.killed_dir / "runs")
        if len(clean) != 1:
            raise AssertionError(f"the uninterrupted run made {len(clean)} run directories: {clean}")
        if len(killed) != 1:
            out.differences.append(f"{len(killed)} run directories after the kills: {[str(p) for p in killed]}")
        extra = sorted(str(p.relative_to(self.killed_dir / "runs")) for p in (self.killed_dir / "runs").glob("*/*")
                       if p.is_dir() and p not in killed)
        out.differences += [f"{p}: a run folder without a manifest after the kills" for p in extra]
        compare_outputs(clean[0], killed[-1], into=out)
        from collapselab.rundir.folders import temporaries

        # outside the run directory too: a run folder being made is a temporary beside it
        out.temporaries += [str(p.relative_to(self.killed_dir)) for p in temporaries(self.killed_dir / "runs") if killed[-1] not in p.parents]
        compare_rows(database_rows(self.urls[0], [clean[0].name], root=clean[0]),
                     database_rows(self.urls[1], [killed[-1].name], root=killed[-1]), keys=primary_keys(), into=out)
        for check in self.extra_checks:
            check(out)
        return out


    def reset_killed(self) -> None:
        """Empty the killed twin (its outputs and its database) for another round of kills."""
        import shutil

        import sqlalchemy as sa

        shutil.rmtree(self.killed_dir / "runs", ignore_errors=True)
        url = sa.make_url(self.urls[1])
        if url.get_backend_name() == "sqlite":
            Path(url.database).unlink(missing_ok=True)
            return
        schema = url.query["options"].removeprefix("-csearch_path=")  # a schema of its own (store_backends.pg_schema_url)
        engine = sa.create_engine(url.difference_update_query(["options"]))
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        finally:
            engine.dispose()


def run_dirs(runs: Path) -> list[Path]:
    """The run directories (holding manifest.json) under `runs/<experiment>/`, sorted."""
    return sorted(p.parent for p in runs.glob("*/*/manifest.json"))


def _twins(base: Path, name: str, urls: tuple[str, str], args: Callable[[Path], list[str]], config: dict | None = None) -> Target:
    dirs = []
    commands = []
    for twin, url in zip(("clean", "killed"), urls, strict=True):
        folder = base / name / twin
        folder.mkdir(parents=True)
        if config is not None:
            write_config(config, folder / "config.yaml")
        dirs.append(folder)
        commands.append(collapselab_command([*args(folder), "--db", url], cwd=folder, log=folder / "command.log",
                                            env={"COLLAPSELAB_PROGRESS": "off"}))
    return Target(name, commands[0], commands[1], dirs[0], dirs[1], urls)


def _sqlite_urls(base: Path, name: str) -> tuple[str, str]:
    return (f"sqlite:///{base / name / 'clean.db'}", f"sqlite:///{base / name / 'killed.db'}")


def write_lm_data(folder: Path, n_train: int = 120, n_test: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for d in tiny_corpus(n, seed, split):
                f.write(json.dumps(d) + "\n")
    return folder


def run_target(base: Path, *, urls: tuple[str, str] | None = None, generations: int = 2, arms: int = 1, scale: int = 1) -> Target:
    """`collapselab run` of a tiny lm experiment (results in the databases `urls`: PostgreSQL
    in the tests); `scale` multiplies the data and the training."""
    data = write_lm_data(base / "run-data", 120 * scale, 30 * scale)
    cfg = tiny_config(data, Path("runs"), generations=generations)
    cfg["data"].update(train_size=24 * scale, test_size=8 * scale)
    cfg["training"]["epochs"] = scale
    cfg["arms"] = cfg["arms"][:arms]
    return _twins(base, "run", urls or _sqlite_urls(base, "run"), lambda f: ["run", str(f / "config.yaml"), "--run-id", "r", "-q"], cfg)


def refinery_target(base: Path, *, scale: int = 1) -> Target:
    """`collapselab run` of the three-arm refinery experiment (human, contaminated, synthetic
    from human), tiny QA."""
    from unit.refinery.qa_fixtures import three_arm_config, write_tiny_qa

    cfg = three_arm_config(write_tiny_qa(base / "qa-data"), Path("runs"))
    cfg["training"]["epochs"] = scale
    return _twins(base, "refinery", _sqlite_urls(base, "refinery"), lambda f: ["run", str(f / "config.yaml"), "--run-id", "r", "-q"], cfg)


def learner_config(base: Path, *, steps: int, docs: int) -> dict:
    """A learner on a JSON Lines stream of made-up documents, fed a quarter its own writing."""
    rng = random.Random(0)
    words = "the cat sat on the mat and the dog sat on the log a model trained on its own output forgets".split()
    for name, n in (("docs", docs), ("held", 4)):
        with (base / f"{name}.jsonl").open("w") as f:
            for i in range(n):
                f.write(json.dumps({"id": f"{name}{i}", "text": " ".join(rng.choice(words) for _ in range(40))}) + "\n")
    model = base / "base-model"
    if not model.exists():
        save_chat_model(model, chat=True, seed=3)
    return {
        "learner": {"name": "stream", "output_dir": "runs", "docs_per_step": 4, "steps": steps, "self_feed": 0.25, "self_feed_tokens": 6,
                    "keep_checkpoints": None},
        "source": {"kind": "jsonl", "path": str(base / "docs.jsonl")},
        "model": {"name": str(model), "lora": {"r": 4}},
        "training": {"lr": 0.001, "seq_len": 32, "batch_tokens": 256},
        "evaluation": {"held_out": {"kind": "jsonl", "path": str(base / "held.jsonl")}, "tokens": 128, "seq_len": 32, "continuations": 3,
                       "prompt_tokens": 6, "continuation_tokens": 6},
    }


def learn_target(base: Path, *, steps: int = 3) -> Target:
    """`collapselab learn` on a document stream, publishing a checkpoint per step. Beyond the
    files: every document of the stream trained on once, in order, none skipped."""
    (base / "learn-data").mkdir(parents=True)
    cfg = learner_config(base / "learn-data", steps=steps, docs=4 * steps + 4)
    target = _twins(base, "learn", _sqlite_urls(base, "learn"), lambda f: ["learn", str(f / "config.yaml")], cfg)

    def documents_once_in_order(out: Comparison) -> None:
        for folder in (target.clean_dir, target.killed_dir):
            run_dir = run_dirs(folder / "runs")[-1]
            trained = []
            for k in range(1, steps + 1):
                trained += json.loads((run_dir / "checkpoints" / f"step-{k}" / "state.json").read_text())["documents"]
            spooled = [json.loads(line)["id"] for line in (run_dir / "stream.jsonl").read_text().splitlines()]
            human = [d for d in trained if d.startswith("jsonl:")]
            if human != spooled[: len(human)] or len(set(trained)) != len(trained):
                out.differences.append(f"{folder.name}: documents trained {trained} are not the stream {spooled} once each, in order")
            out.values += len(trained)

    target.extra_checks.append(documents_once_in_order)
    return target


# ---------------------------------------------------------------- sweep


def sweep_target(base: Path, *, trials: int = 2) -> Target:
    """`collapselab sweep` of a tiny experiment over `trials` ratios, on a local Ray started by
    the driver (one per twin, under a RAY_TMPDIR of its own so its processes can be found)."""
    import tempfile

    from tiny_lab import tiny_config as sweep_config
    from tiny_lab import write_corpus

    data = write_corpus(base / "sweep-data")
    cfg = sweep_config(data, Path("runs"), sweep={"num_cpus": 2, "resources": {"cpus": 1}})
    ratios = ",".join(str(round(0.25 + 0.5 * i / max(1, trials - 1), 3)) for i in range(trials))
    target = _twins(base, "sweep", _sqlite_urls(base, "sweep"), lambda f: ["sweep", str(f / "config.yaml"), "--grid", f"arms.0.ratio={ratios}"], cfg)
    target.whole_tree = True
    for command in (target.clean, target.killed):
        command.env.update(RAY_TMPDIR=tempfile.mkdtemp(prefix="clk"), RAY_USAGE_STATS_ENABLED="0")
    return target


def stop_ray(command: Command) -> None:
    """SIGKILL what is left of the Ray the command started (its driver killed), and wait."""
    from tiny_lab import kill_all, ray_processes, wait_gone

    ray_tmp = command.env["RAY_TMPDIR"]
    kill_all(ray_processes(ray_tmp))
    left = wait_gone(ray_tmp, 20)
    if left:
        raise AssertionError(f"Ray processes {left} of {ray_tmp} outlived SIGKILL")


def running_trials(folder: Path) -> list[int]:
    """Pids of the sweep's trials whose state file says they run now (on this host)."""
    pids = []
    for state in folder.glob("runs/sweeps/*/trials/*.json"):
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        if data.get("status") == "running" and Path(f"/proc/{data['pid']}").exists():
            pids.append(int(data["pid"]))
    return pids


def kill_a_trial(folder: Path, timeout_s: float = 300) -> Callable:
    """A `run_schedule` kill that SIGKILLs one running trial of the sweep in `folder` (waiting
    for one to run) instead of the driver, then lets the driver end as it will (Ray retries
    the trial, or the driver reports it failed and exits 1: the next attempt finishes it)."""
    import os
    import signal
    import subprocess
    import time

    def kill(proc: subprocess.Popen) -> bool:
        deadline = time.monotonic() + timeout_s
        while not (pids := running_trials(folder)):
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)
        proc.wait(timeout=timeout_s)
        return True

    return kill


# ---------------------------------------------------------------- serve beside a learner


@dataclass
class ServeReport:
    """What a chat server following a learner saw while the learner was killed again and again."""

    answers: int = 0
    refused: list[str] = field(default_factory=list)  # any answer but a 200
    steps_served: list[int] = field(default_factory=list)  # the checkpoints answers came from, in order
    load_failures: list[str] = field(default_factory=list)  # the server's log lines about a checkpoint it could not load

    def problems(self, last_step: int) -> list[str]:
        out = [*self.refused[:5], *self.load_failures[:5]]
        if self.steps_served != sorted(self.steps_served):
            out.append(f"the server went back to an older checkpoint: {self.steps_served}")
        if not self.steps_served or self.steps_served[-1] != last_step:
            out.append(f"the server did not end on step {last_step}: {sorted(set(self.steps_served))}")
        return out


def serve_beside_learner(target: Target, run: Callable[[], Schedule], *, last_step: int, timeout_s: float = 600) -> tuple[Schedule, ServeReport]:
    """Run `run()` (the kill schedule of the learner `target.killed`) while `collapselab serve
    --learner` follows the killed twin's run, from its first checkpoint on, and a client keeps
    chatting with it. Returns the schedule and what the client saw."""
    import threading
    import time

    import httpx
    from serve_process import collapselab, free_port, stop, wait_healthy

    done: dict[str, Schedule] = {}
    learner = threading.Thread(target=lambda: done.update(schedule=run()), daemon=True)
    learner.start()
    deadline = time.monotonic() + timeout_s
    while not (found := [d for d in run_dirs(target.killed_dir / "runs") if (d / "checkpoints" / "latest").is_file()]):
        if not learner.is_alive() or time.monotonic() > deadline:
            learner.join()
            raise AssertionError(f"the learner published no checkpoint; see {target.killed.log}")
        time.sleep(0.1)
    port, log = free_port(), target.killed_dir / "serve.log"
    server = collapselab(["serve", "--learner", str(found[0]), "--port", str(port)], log)
    report, asking = ServeReport(), threading.Event()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, log, timeout=timeout_s)  # a loaded machine starts a server slowly

        def keep_asking() -> None:
            with httpx.Client(timeout=60) as client:
                while not asking.is_set():
                    r = client.post(f"{url}/chat", json={"message": "Tell me about the cat", "max_length": 4})
                    report.answers += 1
                    if r.status_code != 200:
                        report.refused.append(f"{r.status_code}: {r.text[:200]}")
                    else:
                        report.steps_served.append(r.json()["generation"])

        asker = threading.Thread(target=keep_asking, daemon=True)
        asker.start()
        learner.join()
        deadline = time.monotonic() + 120  # the server notices the last checkpoint within its reload interval
        while (not report.steps_served or report.steps_served[-1] != last_step) and time.monotonic() < deadline:
            time.sleep(0.2)
        asking.set()
        asker.join(60)
        if server.poll() is not None:
            report.refused.append(f"the server exited with {server.returncode}")
    finally:
        stop(server)
    report.load_failures = [line for line in log.read_text().splitlines() if "failed to load" in line or "Traceback" in line]
    return done["schedule"], report
