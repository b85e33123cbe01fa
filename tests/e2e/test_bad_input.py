"""Every command over a folder of bad files: one line of output, its exit code, no traceback.

The table `CASES` is the contract: each row is a command line (with `{bad}` standing for
the folder of bad files), the exit code it must end with (2 bad input, 3 the results
database cannot be reached; see `collapselab.errors`) and a piece of the one line it must
print, which names the file and, where there is one, the record, field or key. A new
command joins by adding rows (`models` and `config reference` read no input).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from collapselab.cli import app

pytestmark = pytest.mark.e2e

SQUAD = {
    "version": "v2.0",
    "data": [{
        "title": "Normans",
        "paragraphs": [{
            "context": "The Normans lived in Normandy.",
            "qas": [
                {"id": "q1", "question": "Where?", "answers": [{"text": "Normandy", "answer_start": 21}], "is_impossible": False},
                {"id": "q2", "question": "When?", "answers": [], "is_impossible": True},
            ],
        }],
    }],
}
TEXT = "\n\n".join(f"Story {i}: the cat saw a dog near the river and they played all day." for i in range(40))
# A port nothing listens on: the connection is refused at once (no timeout to wait out).
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:9/none"


def _config(task: str, dataset: str, path: str) -> dict:
    """A small valid config; the rows make it bad one way at a time."""
    return {
        "experiment": {"name": f"bad-{task}", "task": task, "generations": 1, "output_dir": "{bad}/runs"},
        "data": {"dataset": dataset, "path": path, "train_size": 8, "test_size": 4, "block_tokens": 16},
        "model": {
            "name": "scratch",
            "scratch": {"architecture": "llama", "vocab_size": 300, "d_model": 16, "n_layers": 1, "n_heads": 2, "max_positions": 128},
            "pretrain": {"epochs": 1, "batch_tokens": 256, "seq_len": 32},
        },
        "training": {"epochs": 1, "batch_tokens": 256, "seq_len": 32},
        "arms": [{"name": "replace", "init": "previous", "mix": "replace"}],
    }


def _dump(obj: object) -> bytes:
    return yaml.safe_dump(obj, sort_keys=False).encode()


def _squad(change) -> bytes:
    data = json.loads(json.dumps(SQUAD))
    change(data["data"][0]["paragraphs"][0]["qas"])
    return json.dumps(data).encode()


def _with(cfg: dict, block: str, **values) -> dict:
    return {**cfg, block: {**cfg[block], **values}}


LM = _config("lm", "tinystories", "{bad}/stories.txt")
QA = _config("qa", "squad_v2", "{bad}/squad.json")

FILES: dict[str, bytes] = {
    # configs
    "lm.yaml": _dump(LM),
    "qa-truncated.yaml": _dump(_with(QA, "data", path="{bad}/squad-truncated.json")),
    "qa-list.yaml": _dump(_with(QA, "data", path="{bad}/squad-list.json")),
    "qa-no-id.yaml": _dump(_with(QA, "data", path="{bad}/squad-no-id.json")),
    "qa-answers-str.yaml": _dump(_with(QA, "data", path="{bad}/squad-answers-str.json")),
    "qa-latin1.yaml": _dump(_with(QA, "data", path="{bad}/squad-latin1.json")),
    "qa-empty.yaml": _dump(_with(QA, "data", path="{bad}/empty.json")),
    "qa-binary.yaml": _dump(_with(QA, "data", path="{bad}/binary.json")),
    "records-broken.yaml": _dump(_with(QA, "data", dataset="jsonl", path="{bad}/records-broken.jsonl")),
    "records-answers-dict.yaml": _dump(_with(QA, "data", dataset="jsonl", path="{bad}/records-answers-dict.jsonl")),
    "records-answers-int.yaml": _dump(_with(QA, "data", dataset="jsonl", path="{bad}/records-answers-int.jsonl")),
    "records-no-id.yaml": _dump(_with(QA, "data", dataset="jsonl", path="{bad}/records-no-id.jsonl")),
    "config-latin1.yaml": b"experiment:\n  name: caf\xe9\n",
    "config-binary.yaml": bytes(range(256)),
    "config-nul.yaml": b"experiment: {}\n\x00\x00\x00\x00",
    "config-empty.yaml": b"",
    "config-list.yaml": b"- experiment\n- data\n",
    "config-broken.yaml": b"experiment: [unclosed\ndata: {}\n",
    "config-unknown-key.yaml": _dump(_with(LM, "training", epochz=2)),
    "config-mistyped.yaml": _dump(_with(LM, "experiment", generations="two")),
    "config-duplicate.yaml": _dump(LM) + b"arms: []\n",
    "serve-unknown-key.yaml": b"source: {modle: x}\n",
    "learn-unknown-key.yaml": b"learner: {stepz: 1}\n",
    # data files
    "stories.txt": TEXT.encode(),
    "stories-latin1.txt": b"Once upon a time a caf\xe9 opened.\n\nThe end.\n",
    "squad.json": json.dumps(SQUAD).encode(),
    "squad-truncated.json": json.dumps(SQUAD).encode()[:-40],
    "squad-list.json": b"[]",
    "squad-no-id.json": _squad(lambda qas: qas[1].pop("id")),
    "squad-answers-str.json": _squad(lambda qas: qas[0].update(answers="Normandy")),
    "squad-latin1.json": json.dumps(SQUAD).replace("Normandy", "Normandi\\u00e9").encode().replace(b"\\u00e9", b"\xe9"),
    "empty.json": b"",
    "binary.json": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    "records-broken.jsonl": b'{"id": "a", "question": "q", "answers": ["x"]}\n{"id": "b", "question": \n',
    "records-answers-dict.jsonl": b'{"id": "a", "question": "q", "answers": {"answer_start": [3]}}\n',
    "records-answers-int.jsonl": b'{"id": "a", "question": "q", "answers": ["x", 7]}\n',
    "records-no-id.jsonl": b'{"question": "q", "answers": ["x"]}\n',
    # predictions
    "preds.json": b'{"q1": "Normandy", "q2": ""}',
    "preds-nonstring.json": b'{"q1": "Normandy", "q2": 0}',
    "preds-list.json": b'[{"id": "q1", "prediction_text": "Normandy"}]',
    "preds-truncated.json": b'{"q1": "Normandy", "q2',
    # databases and exports
    "notadb.db": b"this is a text file, not a SQLite database\n" * 100,
    "sweep-truncated/sweep.json": b'{"name": "s", "grid": {"training.epochs": [1, ',
    "sweep-nameless/sweep.json": b'{"grid": {}}',
    "export-bad/run.json": b'{"format": "collapselab-export", "format_version": 1, "run": {',
    "export-no-run/run.json": b'{"format": "collapselab-export", "format_version": 1, "arms": []}',
    "export-odd-run/run.json": b'{"format": "collapselab-export", "format_version": 1, "run": {"run_id": "r", "colour": 1}, "arms": []}',
}

# (command line, exit code, a piece of the one line it prints)
CASES: list[tuple[str, int, str]] = [
    # run: configs
    ("run {bad}/config-latin1.yaml", 2, "{bad}/config-latin1.yaml:2: not UTF-8 text (byte 0xe9"),
    ("run {bad}/config-binary.yaml", 2, "{bad}/config-binary.yaml:2: not UTF-8 text (byte 0x80"),
    ("run {bad}/config-nul.yaml", 2, "{bad}/config-nul.yaml:2: not a text file (NUL byte"),
    ("run {bad}/config-empty.yaml", 2, "{bad}/config-empty.yaml: empty, expected YAML"),
    ("run {bad}/config-list.yaml", 2, "{bad}/config-list.yaml: top level must be a mapping of blocks, got list"),
    ("run {bad}/config-broken.yaml", 2, "{bad}/config-broken.yaml:2:5: not valid YAML (while parsing a flow sequence"),
    ("run {bad}/config-unknown-key.yaml", 2, "{bad}/config-unknown-key.yaml: unknown key 'training.epochz'"),
    ("run {bad}/config-mistyped.yaml", 2, "{bad}/config-mistyped.yaml: experiment.generations: Input should be a valid integer"),
    ("run {bad}/config-duplicate.yaml", 2, "{bad}/config-duplicate.yaml:"),
    ("run {bad}/missing.yaml", 2, "{bad}/missing.yaml: config file does not exist; ready configs: "),
    ("run {bad}/lm.yml", 2, "{bad}/lm.yml: config file does not exist; did you mean {bad}/lm.yaml?"),
    ("run quikstart", 2, "quikstart: config file does not exist; did you mean the ready config 'quickstart'"),
    ("run {bad}/lm.yaml --set training.epochz=1", 2, "unknown key 'training.epochz'"),
    # run: data files
    ("run {bad}/qa-truncated.yaml", 2, "{bad}/squad-truncated.json:1:"),
    ("run {bad}/qa-list.yaml", 2, "{bad}/squad-list.json: top level: expected an object with field 'data', got list"),
    ("run {bad}/qa-no-id.yaml", 2, "{bad}/squad-no-id.json: article 'Normans' paragraph 0 question 1: missing field 'id'"),
    ("run {bad}/qa-answers-str.yaml", 2, "{bad}/squad-answers-str.json: question 'q1': field 'answers' must be list, got str"),
    ("run {bad}/qa-latin1.yaml", 2, "{bad}/squad-latin1.json:1: not UTF-8 text"),
    ("run {bad}/qa-empty.yaml", 2, "{bad}/empty.json: empty, expected JSON"),
    ("run {bad}/qa-binary.yaml", 2, "{bad}/binary.json:1: not UTF-8 text"),
    ("run {bad}/records-broken.yaml", 2, "{bad}/records-broken.jsonl:2: not valid JSON"),
    ("run {bad}/records-answers-dict.yaml", 2, "{bad}/records-answers-dict.jsonl:1: record 'a': field 'answers' is an object without 'text'"),
    ("run {bad}/records-answers-int.yaml", 2, "{bad}/records-answers-int.jsonl:1: record 'a': field 'answers' item 1 must be a string, got int 7"),
    ("run {bad}/records-no-id.yaml", 2, "{bad}/records-no-id.jsonl:1: record is missing field 'id'"),
    ("run {bad}/lm.yaml --set data.path={bad}/stories-latin1.txt", 2, "{bad}/stories-latin1.txt:1: not UTF-8 text"),
    ("run {bad}/lm.yaml --db " + UNREACHABLE, 3, "cannot reach the results database"),
    ("run {bad}/lm.yaml --db sqlite:///{bad}/notadb.db", 3, "{bad}/notadb.db: cannot open the results database"),
    ("quickstart --set data.path={bad}/stories-latin1.txt", 2, "{bad}/stories-latin1.txt:1: not UTF-8 text"),
    # run: values the schema takes but the run could not (refused before any run directory exists)
    ("run {bad}/lm.yaml --set experiment.name=../../etc", 2, "experiment.name: must be a folder name: not empty, not '.' or '..', no '/' or '\\' (got '../../etc')"),
    ("run {bad}/lm.yaml --set experiment.name=", 2, "experiment.name: must be a folder name"),
    ("run {bad}/lm.yaml --set model.scratch.d_model=30 --set model.scratch.n_heads=4", 2, "model.scratch.n_heads: 4 heads do not divide model.scratch.d_model 30"),
    ("run {bad}/lm.yaml --set data.train_size=1", 2, "data.train_size: Input should be greater than or equal to 2 (got 1)"),
    ("run {bad}/lm.yaml --set data.test_size=1", 2, "data.test_size: 1 blocks of 16 tokens are shorter than one perplexity block of training.seq_len 32 tokens"),
    ("run {bad}/lm.yaml --run-id ../x", 2, "--run-id '../x': must be a folder name"),
    ("sweep {bad}/lm.yaml --grid training.epochs=1,2 --name ../x", 2, "--name '../x': must be a folder name"),
    ("config validate {bad}/lm.yaml --set arms.0.name=..", 2, "arms.0.name: must be a folder name"),
    ("quickstart --set experiment.generations=two", 2, "experiment.generations: Input should be a valid integer"),
    # config
    ("config validate {bad}/config-latin1.yaml", 2, "{bad}/config-latin1.yaml:2: not UTF-8 text"),
    ("config validate {bad}/config-unknown-key.yaml", 2, "unknown key 'training.epochz'"),
    ("config show {bad}/config-broken.yaml", 2, "{bad}/config-broken.yaml:2:5: not valid YAML"),
    ("config show {bad}/nothing-here", 2, "{bad}/nothing-here: config file does not exist"),
    # serve and learn: their configs, and what they are pointed at (each fails before serving or training)
    ("serve --config {bad}/config-latin1.yaml", 2, "{bad}/config-latin1.yaml:2: not UTF-8 text"),
    ("serve --config {bad}/config-broken.yaml", 2, "{bad}/config-broken.yaml:2:5: not valid YAML"),
    ("serve --config {bad}/serve-unknown-key.yaml", 2, "{bad}/serve-unknown-key.yaml: unknown key 'source.modle'"),
    ("serve --run {bad}", 2, "{bad}: not a run directory (no manifest.json)"),
    ("serve --host 0.0.0.0 --model {bad}/no-model", 2, "serve flags: host: '0.0.0.0' is reachable from the network and no API key is set"),
    ("serve --host 0.0.0.0 --allow-unauthenticated --model {bad}/no-model", 2, "{bad}/no-model"),  # past the host check: the model
    ("serve --run {bad}/run-bad-config", 2, "{bad}/run-bad-config/config.yaml:2: not UTF-8 text"),
    ("learn {bad}/config-binary.yaml", 2, "{bad}/config-binary.yaml:2: not UTF-8 text"),
    ("learn {bad}/config-empty.yaml", 2, "{bad}/config-empty.yaml: empty, expected YAML"),
    ("learn {bad}/learn-unknown-key.yaml", 2, "unknown key 'learner.stepz'"),
    ("learn {bad}/missing.yaml", 2, "{bad}/missing.yaml: config file does not exist"),
    # sweep: the base config and the grid
    ("sweep {bad}/config-nul.yaml --grid training.epochs=1,2", 2, "{bad}/config-nul.yaml:2: not a text file (NUL byte"),
    ("sweep {bad}/lm.yaml --grid training.epochz=1,2", 2, "sweep point training.epochz=1: unknown key 'training.epochz' (did you mean 'epochs'?)"),
    ("sweep {bad}/lm.yaml --grid nonsense", 2, "--grid 'nonsense': expected KEY=V1,V2,..."),
    # status and report over damaged run directories
    ("status {bad}", 2, "{bad}: not a run directory (no config.yaml)"),
    ("status {bad}/run-bad-metrics", 2, "{bad}/run-bad-metrics/replace/seed-0/gen-0/metrics.json:1:"),
    ("status {bad}/run-bad-config", 2, "{bad}/run-bad-config/config.yaml:2: not UTF-8 text"),
    ("report {bad}/run-bad-metrics", 2, "{bad}/run-bad-metrics/replace/seed-0/gen-0/metrics.json:1:"),
    ("report {bad}/run-bad-manifest", 2, "{bad}/run-bad-manifest/manifest.json:1:"),
    ("report {bad}", 2, "{bad}: not a run directory (no manifest.json)"),
    ("report {bad}/run-bad-metrics --sweep {bad}", 2, "give a run, or --sweep FOLDER"),
    ("report --sweep {bad}", 2, "{bad}: not a sweep folder (no sweep.json)"),
    ("report --sweep {bad}/sweep-truncated", 2, "{bad}/sweep-truncated/sweep.json:1:"),
    ("report --sweep {bad}/sweep-nameless", 2, "{bad}/sweep-nameless/sweep.json: key 'name' is missing or not a string"),
    ("status {bad}/run-metrics-list", 2, "{bad}/run-metrics-list/replace/seed-0/gen-0/metrics.json: key "),
    ("report {bad}/run-metrics-list", 2, "{bad}/run-metrics-list/replace/seed-0/gen-0/metrics.json: key "),
    ("report run-x --db " + UNREACHABLE, 3, "cannot reach the results database"),
    # the results database
    ("results run-x run-y --db sqlite:///{bad}/empty.db", 2, "unknown run 'run-x'"),
    ("results --format xml --db sqlite:///{bad}/empty.db", 2, "Invalid value for '--format' / '-f'"),
    ("status run-x --db sqlite:///{bad}/empty.db", 2, "unknown run 'run-x'"),
    ("status run-x --db not-a-url", 3, "database URL 'not-a-url' is not a SQLAlchemy URL"),
    ("dashboard --db not-a-url", 3, "database URL 'not-a-url' is not a SQLAlchemy URL"),
    ("sweep {bad}/lm.yaml --grid training.epochs=1,2 --db not-a-url", 3, "database URL 'not-a-url' is not a SQLAlchemy URL"),
    ("run --db sqlite:///{bad}/empty.db", 2, "Missing argument 'config'"),
    ("results --db " + UNREACHABLE, 3, "postgresql+psycopg://nobody@127.0.0.1:9/none: cannot reach the results database (OperationalError: "),
    ("results --db sqlite:///{bad}/notadb.db", 3, "{bad}/notadb.db: cannot open the results database (DatabaseError: file is not a database)"),
    ("results --db sqlite:///{bad}/missing.db", 3, "no results database at {bad}/missing.db"),
    ("results --db not-a-url", 3, "database URL 'not-a-url' is not a SQLAlchemy URL"),
    ("results --db mysql://u@localhost/db", 3, "no driver for this database"),
    ("results --sweep nope --db " + UNREACHABLE, 3, "cannot reach the results database"),
    ("results run-x --db sqlite:///{bad}/empty.db", 2, "unknown run 'run-x'"),
    ("export run-x --to {bad}/out --db " + UNREACHABLE, 3, "cannot reach the results database"),
    ("export run-x --to {bad}/out --db sqlite:///{bad}/empty.db", 2, "unknown run 'run-x'"),
    ("import {bad}/run-bad-manifest --db sqlite:///{bad}/empty.db", 2, "{bad}/run-bad-manifest/manifest.json:1:"),
    ("import {bad}/run-bad-metrics --db " + UNREACHABLE, 3, "cannot reach the results database"),
    ("import {bad}/export-bad --db sqlite:///{bad}/empty.db", 2, "{bad}/export-bad/run.json:1:"),
    ("import {bad}/export-no-run --db sqlite:///{bad}/empty.db", 2, "{bad}/export-no-run/run.json: key 'run': expected an object of runs columns, got None"),
    ("import {bad}/export-odd-run --db sqlite:///{bad}/empty.db", 2, "{bad}/export-odd-run/run.json: key 'run': unknown column(s) ['colour'], missing column(s) ["),
    ("import {bad} --db sqlite:///{bad}/empty.db", 2, "neither an export (no run.json) nor a run directory"),
    # score: predictions and dataset files
    ("score --data-file {bad}/squad.json --predictions {bad}/preds-nonstring.json", 2, "{bad}/preds-nonstring.json: prediction for 'q2' must be a string"),
    ("score --data-file {bad}/squad.json --predictions {bad}/preds-list.json", 2, "{bad}/preds-list.json: predictions must be a JSON object of id -> answer string, got a JSON list"),
    ("score --data-file {bad}/squad.json --predictions {bad}/preds-truncated.json", 2, "{bad}/preds-truncated.json:1:"),
    ("score --data-file {bad}/squad.json --predictions {bad}/missing.json", 2, "{bad}/missing.json: file does not exist"),
    ("score --dataset {bad}/squad-truncated.json --predictions {bad}/preds.json", 2, "{bad}/squad-truncated.json:1:"),
    ("score --dataset {bad}/squad-no-id.json --predictions {bad}/preds.json", 2, "missing field 'id'"),
    ("score --dataset {bad}/records-answers-dict.jsonl --predictions {bad}/preds.json", 2, "field 'answers' is an object without 'text'"),
    ("score --dataset {bad}/stories.txt --predictions {bad}/preds.json", 2, "{bad}/stories.txt: unsupported records file type '.txt'"),
    ("score --data-file {bad}/squad-latin1.json --predictions {bad}/preds.json", 2, "{bad}/squad-latin1.json:1: not UTF-8 text"),
]


# A metrics.json as the engine writes it (collapselab.rundir.metrics_file), so only the manifest is bad.
GOOD_METRICS = {
    "arm": "replace", "seed": 0, "generation": 0,
    "metrics": {"perplexity": {"value": 12.5, "version": "1", "higher_is_better": False, "details": {}}},
    "train": {"losses": [3.0], "steps": 1, "tokens": 64, "seconds": 0.1},
    "timings": {"train_s": 0.1, "generate_s": 0.1, "evaluate_s": 0.1},
    "sizes": {"train_records": 8, "synthetic_records": 8},
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    for name, data in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.replace(b"{bad}", str(folder).encode()))
    cfg = yaml.safe_dump(json.loads(json.dumps(LM).replace("{bad}", str(folder))), sort_keys=False)
    manifest = {"run_id": "r1", "experiment": "bad-lm", "created": "2026-01-01T00:00:00+00:00", "config_hash": "0" * 16, "git_sha": "x"}
    for run, config, manifest_text, metrics in (
        ("run-bad-metrics", cfg.encode(), json.dumps(manifest), b'{"arm": "replace", "metrics": {"perplexity": {"va'),
        ("run-bad-manifest", cfg.encode(), json.dumps(manifest)[:30], json.dumps(GOOD_METRICS).encode()),
        ("run-bad-config", b"experiment:\n  name: caf\xe9\n", json.dumps(manifest), b"{}"),
        ("run-metrics-list", cfg.encode(), json.dumps(manifest), b"[]"),  # JSON, but not the metrics.json shape
    ):
        gen = folder / run / "replace" / "seed-0" / "gen-0"
        gen.mkdir(parents=True)
        (folder / run / "config.yaml").write_bytes(config)
        (folder / run / "manifest.json").write_text(manifest_text)
        (gen / "metrics.json").write_bytes(metrics)
        (gen / "DONE").write_text('{"finished": "2026-01-01T00:00:00+00:00"}')
    from collapselab.store import connect

    connect(f"sqlite:///{folder / 'empty.db'}").dispose()  # a valid database without runs
    return folder


@pytest.mark.parametrize(("command", "code", "says"), CASES, ids=[c[0].split(" --db")[0] for c in CASES])
def test_bad_input_is_one_line_and_its_exit_code(bad, command, code, says, monkeypatch):
    monkeypatch.chdir(bad)  # nothing may land in the repository; `runs/` goes here
    args = [a.replace("{bad}", str(bad)) for a in command.split()]
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{command}: raised {result.exception!r} instead of a named error"
    )
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and result.stdout == "", f"{command}: expected one line on stderr, got {result.output!r}"
    assert lines[0].startswith("error: ") and says.replace("{bad}", str(bad)) in lines[0], lines[0]
    assert result.exit_code == code, f"{command}: exit {result.exit_code}, expected {code}: {lines[0]}"


def test_names_that_are_paths_write_nothing_outside_the_run_root(bad, monkeypatch):
    # `experiment.name: ../../etc` once wrote the run two folders above runs/; an empty name
    # straight into runs/. Refused, nothing is written anywhere.
    monkeypatch.chdir(bad)
    before = sorted(bad.rglob("*"))
    for name in ("../../etc", "", "..", "a/b"):  # output_dir is {bad}/runs
        result = CliRunner().invoke(app, ["run", str(bad / "lm.yaml"), "--set", f"experiment.name={name}"])
        assert result.exit_code == 2 and "experiment.name" in result.stderr, result.output
    assert sorted(bad.rglob("*")) == before and not (bad.parent / "etc").exists()


def test_a_real_process_prints_no_traceback(bad):
    # The CLI's entry point in its own process: what a user's terminal shows.
    for command, code in (("config validate {bad}/config-binary.yaml", 2), ("results --db " + UNREACHABLE, 3)):
        args = [a.replace("{bad}", str(bad)) for a in command.split()]
        proc = subprocess.run([sys.executable, "-m", "collapselab.cli", *args], capture_output=True, text=True,
                              cwd=bad, env={**os.environ, "COLUMNS": "80"}, timeout=120)
        assert (proc.returncode, proc.stdout) == (code, ""), proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
