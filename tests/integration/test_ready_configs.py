"""Every ready config in configs/ runs end to end, shrunken: `collapselab run NAME` (or
`collapselab learn NAME`) with `--set` overrides of its sizes, the same command a user types,
on the real data in ../shared/data. Pretrained models are swapped for tiny random ones of the
same kind (a chat model for SmolLM2, a base model for OPT) so a config's pipeline, not a
135M-parameter model, is what the seconds pay for. The reproduction configs (repro-*) have
their own tests (tests/unit/reproduce). Full-size figures: benchmarks/bench_ready_configs.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import save_chat_model, tiny_reference
from typer.testing import CliRunner

from collapselab.cli import app

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# A tiny scratch model and training recipe: seconds on two cores.
SCRATCH = ["model.scratch.vocab_size=512", "model.scratch.d_model=32", "model.scratch.n_layers=1", "model.scratch.n_heads=2",
           "model.pretrain.epochs=1", "model.pretrain.batch_tokens=2048"]
# 64-token held-out blocks: shorter ones are too short to calibrate the gibberish scorer on
LM = ["data.train_size=24", "data.test_size=16", "data.block_tokens=64", "training.seq_len=128", "training.batch_tokens=1024",
      "evaluation.batch_tokens=2048", "evaluation.reference_sequences=8"]
# 16 held-out questions: fewer are too few to calibrate the gibberish scorer on
QA = ["data.train_size=16", "data.test_size=16", "training.batch_tokens=4096", "evaluation.batch_tokens=8192"]
PRETRAINED = ["model.name={chat}"]
# The refinery's gibberish filter is calibrated on the human seed at run time: on CosmosQA
# (one context per question) 16-58 seed questions leave too few held-out sentences; 64 do.
COSMOS_SEED = ["data.train_size=64"]
# Two generations where the config has several: the second trains on the first one's output.
LOOP = ["experiment.generations=2", "experiment.seeds=[0]"]

# config -> its shrinking overrides ({chat}, {base}, {reference}: the tiny models' folders)
SHRUNKEN: dict[str, list[str]] = {
    "quickstart": LOOP + LM + SCRATCH + ["model.pretrain.seq_len=128", "evaluation.reference_model={reference}"],
    "gerstgrasser-tinystories": LOOP + LM + SCRATCH + ["model.pretrain.seq_len=128", "evaluation.reference_model={reference}"],
    # the recovering arm switches at generation 1, the last of the shrunken run's two
    "recovery-quickstart": LOOP + LM + SCRATCH + ["model.pretrain.seq_len=128", "evaluation.reference_model={reference}",
                                                  "arms.1.schedule.0.generation=1"],
    "kc-wikitext2-ratio": LOOP + LM + SCRATCH + ["model.pretrain.seq_len=128", "evaluation.reference_model={reference}"],
    "shumailov-wikitext2": LOOP + LM + ["model.name={base}", "decoding.max_new_tokens=16", "evaluation.reference_model={reference}"],
    "squad-selfplag": LOOP + QA + SCRATCH + ["model.scratch.max_positions=1024", "model.pretrain.seq_len=512", "decoding.max_new_tokens=8"],
    "refinery-squad": QA + SCRATCH + ["experiment.seeds=[0]", "model.scratch.max_positions=1024", "model.pretrain.seq_len=512",
                                      "decoding.max_new_tokens=8", "refinery.generator_epochs=1"],
    "refinery-cosmosqa": QA + SCRATCH + ["experiment.seeds=[0]", "model.scratch.max_positions=1024", "model.pretrain.seq_len=512",
                                         "decoding.max_new_tokens=8", "refinery.generator_epochs=1", "refinery.expansion_factor=1.0", *COSMOS_SEED],
    "selfplag-smollm2": LOOP + QA + PRETRAINED + ["decoding.max_new_tokens=8"],
    "refinery-squad-smollm2": QA + PRETRAINED + ["experiment.seeds=[0]", "decoding.max_new_tokens=8"],
    # the second model that writes the data: a tiny chat model of its own stands in for Gemma
    "refinery-squad-gemma-smollm2": QA + PRETRAINED + ["experiment.seeds=[0]", "decoding.max_new_tokens=8",
                                                       "refinery.generator_model={chat}"],
    "refinery-cosmosqa-smollm2": QA + PRETRAINED + ["experiment.seeds=[0]", "decoding.max_new_tokens=8", "refinery.expansion_factor=1.0",
                                                   *COSMOS_SEED],
    "shumailov-smollm2": LOOP + LM + PRETRAINED + ["decoding.max_new_tokens=16", "evaluation.reference_model={reference}"],
    "kc-smollm2": LOOP + LM + PRETRAINED + ["evaluation.mmlu.per_subject=2", "evaluation.reference_model={reference}"],
    "kc-smollm2-domain": LOOP + LM + PRETRAINED + ["data.topic.articles=3", "evaluation.mmlu.per_subject=2",
                                                   "evaluation.reference_model={reference}"],
}
# learner configs: `collapselab learn`, one published step after the base
LEARNERS: dict[str, list[str]] = {
    name: PRETRAINED + ["learner.steps=1", "learner.docs_per_step=2", "learner.max_doc_tokens=64", "learner.self_feed_tokens=16",
                        "training.seq_len=64", "training.batch_tokens=512", "evaluation.tokens=256", "evaluation.seq_len=64",
                        "evaluation.continuations=2", "evaluation.continuation_tokens=8"]
    for name in ("learn-wikitext2-smollm2", "learn-wikitext2-smollm2-selffeed")
}


def ready_configs() -> list[str]:
    return sorted(p.stem for p in CONFIGS.glob("*.yaml") if not p.stem.startswith("repro-"))


def test_every_ready_config_has_a_shrunken_run():
    # a new ready config gets its overrides here, or this fails
    assert sorted([*SHRUNKEN, *LEARNERS]) == ready_configs()


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One cache for this module's runs: the gibberish scorer fitted on the same human text
    (the WikiText-2 background of every run, a dataset's pool) is fitted once."""
    return tmp_path_factory.mktemp("ready-cache")


@pytest.fixture(autouse=True)
def _shared_cache(shared_cache, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(shared_cache))


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny-models")
    # RoPE positions cost nothing: long enough for a SQuAD or CosmosQA prompt in 320 byte pieces
    return {"chat": str(save_chat_model(root / "chat", chat=True, max_positions=4096)),
            "base": str(save_chat_model(root / "base", chat=False, max_positions=4096)),
            "reference": str(tiny_reference(root / "reference"))}


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"{' '.join(args)}\n{result.output}\n{result.exception!r}"
    return result.output


def _sets(overrides: list[str], models: dict[str, str], out: Path) -> list[str]:
    args = []
    for o in [*overrides, f"experiment.output_dir={out}"]:
        args += ["--set", o.format(**models)]
    return args


@pytest.mark.parametrize("name", sorted(SHRUNKEN))
def test_ready_config_runs_shrunken(name, shared_data, tiny_models, tmp_path, monkeypatch):
    from collapselab.config import load_config

    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    monkeypatch.chdir(tmp_path)  # the bare name is the packaged ready config
    out = tmp_path / "runs"
    output = _invoke(["run", name, "--quiet", *_sets(SHRUNKEN[name], tiny_models, out)])
    cfg = load_config(CONFIGS / f"{name}.yaml")
    (run_dir,) = (out / cfg.experiment.name).iterdir()
    assert str(run_dir) in output
    generations = 1 if cfg.experiment.generations == 1 else 2
    for arm in cfg.arms:
        last = run_dir / arm.name / "seed-0" / f"gen-{generations - 1}"
        assert (last / "DONE").exists(), f"{arm.name}: {sorted(p.name for p in last.parent.iterdir())}"
        metrics = json.loads((last / "metrics.json").read_text())["metrics"]
        # every metric the config asks for was computed on its real data
        wanted = cfg.evaluation.metrics or []
        assert set(wanted) <= set(metrics), sorted(set(wanted) - set(metrics))


@pytest.mark.parametrize("name", sorted(LEARNERS))
def test_ready_learner_config_runs_shrunken(name, shared_data, tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs"
    sets = [a.replace("experiment.output_dir", "learner.output_dir") for a in _sets(LEARNERS[name], tiny_models, out)]
    _invoke(["learn", str(CONFIGS / f"{name}.yaml"), *sets])  # `learn` takes a file
    (run_dir,) = (out / name).iterdir()
    assert (run_dir / "checkpoints" / "step-1").is_dir(), sorted(p.name for p in run_dir.rglob("*"))[:40]
