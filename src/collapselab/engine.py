"""The generation loop. Read it top to bottom.

For every seed and arm, generation g = 0..G-1:

    data_g ──train──▶ model_g ──generate──▶ synthetic_g ──▶ data_{g+1} = mix(policy, human, synthetic_0..g)
                         └──evaluate on the held-out human test set──▶ metrics_g, predictions_g

Generation 0 is the same for every arm with the same generation-0 data (data_0 is the
human pool for every mix policy unless a refinery builder makes it, and every init starts
from the base), so it is computed once per seed and copied to the other arms. Each step writes its output atomically and its existence marks it done: running the
same command again continues at the first missing file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapselab.config import ArmConfig, ExperimentConfig
from collapselab.mixing import mix
from collapselab.models import LoadedModel
from collapselab.records import Record, atomic_write_json, read_records, write_records
from collapselab.rundir import gen_dir, is_done, mark_done, open_run, supersede_from
from collapselab.tasks import HumanData


@dataclass(slots=True)
class Lab:
    """What every generation of a run shares: config, run directory, human data, tokenizer."""

    cfg: ExperimentConfig
    run_dir: Path
    human: HumanData
    tokenizer: Any
    max_positions: int
    db_url: str | None
    report: Any  # callable(str) for progress lines; the CLI prints tables through it
    base_dirs: dict[int, Path] = field(default_factory=dict)  # seed -> cached scratch base folder


def step_seed(seed: int, generation: int, step: str) -> int:
    """Seed of one step. Arms share it (common random numbers make arms comparable)."""
    return int(hashlib.sha256(f"{seed}/{generation}/{step}".encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------- the run


def run_experiment(
    cfg: ExperimentConfig,
    *,
    fresh: bool = False,
    run_id: str | None = None,
    restart_from: int | None = None,
    db_url: str | None = None,
    report=print,
) -> Path:
    """Run (or continue) every seed x arm x generation of `cfg`; returns the run directory."""
    from collapselab import store

    # Bad data, an unknown model or a config the run would fail on late fails here,
    # before any run directory is touched.
    pools = human_pools(cfg, load_human_docs(cfg))
    tokenizer = prepare_tokenizer(cfg, pools[0])
    human = prepare_human(cfg, pools, tokenizer)
    positions = _max_positions(cfg, tokenizer)
    precheck(cfg, human, positions, db_url)
    run_dir = open_run(cfg, fresh=fresh, run_id=run_id)
    if restart_from is not None:
        moved = supersede_from(run_dir, cfg, restart_from)
        report(f"restarting from generation {restart_from}: moved {len(moved)} generation folders to {run_dir / '.superseded'}")
    # Records the run and every generation already DONE: a crash between DONE and its
    # database write (or a database that was down) is repaired on the next invocation.
    store.import_run_dir(db_url, run_dir)
    if restart_from is not None:
        store.forget_generations(db_url, run_dir, moved)
    lab = Lab(cfg, run_dir, human, tokenizer, positions, db_url, report)
    report(f"run {run_dir} | {len(human.train)} human training records, {len(human.test)} test records")
    for seed in cfg.experiment.seeds:
        for arm in cfg.arms:
            run_arm(lab, arm, seed)
    return run_dir


def precheck(cfg: ExperimentConfig, human: HumanData, max_positions: int, db_url: str | None) -> None:
    """Everything that would otherwise fail after hours of training, checked up front."""
    from collapselab.config import ConfigError
    from collapselab.generation import generation_backend
    from collapselab.metrics import get_metric
    from collapselab.models import device

    task = cfg.experiment.task
    for i, name in enumerate(cfg.evaluation.metrics or []):
        try:
            metric = get_metric(name)
        except KeyError as e:
            raise ConfigError(f"evaluation.metrics.{i}: {e.args[0]}") from None
        if metric.task not in ("any", task):
            raise ConfigError(f"evaluation.metrics.{i}: {name!r} is a {metric.task} metric, this is a {task} experiment")
    try:
        generation_backend(cfg.decoding)
    except RuntimeError as e:
        raise ConfigError(str(e)) from None
    for key, recipe in (("training", cfg.training), ("model.pretrain", cfg.model.pretrain)):
        if recipe.precision == "bf16" and device() == "cpu":
            raise ConfigError(f"{key}.precision: bf16 on a CPU is ~150x slower than fp32; use auto or fp32")
    n = len(human.train)
    for i, arm in enumerate(cfg.arms):
        size = arm.size or n
        if arm.mix == "ratio" and (round(arm.ratio * size) > n or size - round(arm.ratio * size) > n):
            raise ConfigError(f"arms.{i}.size: {size} at ratio {arm.ratio} needs more than the {n} human (or synthetic) records a generation has")
        if arm.mix == "accumulate_subsample" and size > 2 * n:
            raise ConfigError(f"arms.{i}.size: {size} is larger than generation 1's accumulated pool ({2 * n} records)")
    if task == "qa" and max_positions - cfg.max_new_tokens < 32:
        raise ConfigError(f"decoding.max_new_tokens: {cfg.max_new_tokens} leaves fewer than 32 of the model's {max_positions} positions for the prompt")
    from collapselab import store

    try:
        store.connect(db_url).dispose()
    except Exception as e:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        raise ConfigError(f"--db / $COLLAPSELAB_DB: cannot open the results database ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None


def run_arm(lab: Lab, arm: ArmConfig, seed: int) -> None:
    synthetic: list[list[Record]] = []  # synthetic[k]: what model_k wrote
    for g in range(lab.cfg.experiment.generations):
        folder = gen_dir(lab.run_dir, arm.name, seed, g)
        if not is_done(folder):
            sibling = _done_generation0(lab, arm, seed) if g == 0 else None
            if sibling is not None:
                _copy_generation(sibling, folder)
            else:
                run_generation(lab, arm, seed, g, synthetic, folder)
            _record(lab, arm.name, seed, g)
            lab.report(("generation", arm.name, seed, g, folder))
        synthetic.append(read_records(folder / "synthetic.parquet"))


def run_generation(lab: Lab, arm: ArmConfig, seed: int, g: int, synthetic: list[list[Record]], folder: Path) -> None:
    cfg, tok = lab.cfg, lab.tokenizer
    timings = _load_json(folder / "timings.json")

    # 1. data_g (generation 0 of a contaminated or synthetic arm comes from the refinery)
    if not (folder / "train.parquet").exists():
        if g == 0 and arm.data != "human":
            from collapselab.refinery import build_arm_data

            built = build_arm_data(lab, arm, seed, step_seed(seed, 0, "refinery"))
            write_records(folder / "rejected.parquet", built.rejected)
            atomic_write_json(folder / "refinery.json", built.stats)
            write_records(folder / "train.parquet", built.records)
        else:
            write_records(folder / "train.parquet", mix(arm, g, lab.human.train, synthetic, step_seed(seed, g, "mix")))
    data = read_records(folder / "train.parquet")

    # 2. model_g
    if not (folder / "model").exists():
        t0 = time.perf_counter()
        model, log = train_generation(lab, arm, seed, g, data)
        from collapselab.models import save_model

        save_model(model, tok, folder / "model", extra_json={"train_log.json": log})
        timings["train_s"] = time.perf_counter() - t0
        atomic_write_json(folder / "timings.json", timings)
    current = _load(folder / "model", cfg)

    # 3. synthetic_g: what the next generation trains on (the last one's is measured only)
    if not (folder / "synthetic.parquet").exists():
        from collapselab.tasks import write_synthetic

        t0 = time.perf_counter()
        written = write_synthetic(current.model, tok, lab.human, cfg, arm.name, g, step_seed(seed, g, "generate"), lab.max_positions)
        write_records(folder / "synthetic.parquet", written)
        timings["generate_s"] = time.perf_counter() - t0
        atomic_write_json(folder / "timings.json", timings)
    own = read_records(folder / "synthetic.parquet")

    # 4. evaluate on the held-out human test set, under model_g and the fixed reference model_0
    from collapselab.tasks import evaluate

    t0 = time.perf_counter()
    reference = current if g == 0 else _load(gen_dir(lab.run_dir, arm.name, seed, 0) / "model", cfg)
    metrics, rows = evaluate(current.model, tok, reference.model, lab.human, own, cfg, step_seed(seed, g, "evaluate"), lab.max_positions, [])
    if g == 0 and cfg.experiment.task == "lm":
        metrics["unigram_perplexity"] = _unigram(lab)
    timings["evaluate_s"] = time.perf_counter() - t0
    _write_predictions(folder / "predictions.parquet", rows)
    train_log = _load_json(folder / "model" / "train_log.json")
    atomic_write_json(folder / "metrics.json", {
        "arm": arm.name, "seed": seed, "generation": g, "metrics": metrics,
        "train": {k: train_log.get(k) for k in ("losses", "steps", "tokens", "seconds")},
        "timings": timings,
        "sizes": {"train_records": len(data), "synthetic_records": len(own),
                  "train_synthetic_share": sum(r.source != "human" for r in data) / max(1, len(data))},
        "refinery": _load_json(folder / "refinery.json") or None,
    })
    mark_done(folder)


def train_generation(lab: Lab, arm: ArmConfig, seed: int, g: int, data: list[Record]) -> tuple[Any, dict[str, Any]]:
    """Build model_g's starting point from the arm's init policy and train it on data_g."""
    from collapselab.models import apply_lora, build_scratch_model, load_pretrained
    from collapselab.tasks import train_on

    cfg = lab.cfg
    scratch = cfg.model.name == "scratch"
    if g == 0 and scratch and arm.data == "human":
        # A scratch model's generation 0 *is* the base: random init trained on the human pool.
        base = prepare_scratch_base(lab, seed)
        return _load(base, cfg, for_training=True).model, _load_json(base / "train_log.json")
    if arm.init == "scratch" or (g == 0 and scratch):  # other generation-0 data: trained like the base
        model = build_scratch_model(cfg.model.scratch, lab.tokenizer, step_seed(seed, g, "init"))
        recipe = cfg.model.pretrain
    else:
        if arm.init == "previous" and g > 0:
            start = _load(gen_dir(lab.run_dir, arm.name, seed, g - 1) / "model", cfg, for_training=True).model
        elif scratch:
            start = _load(prepare_scratch_base(lab, seed), cfg, for_training=True).model
        else:
            start = load_pretrained(cfg.model.name, cfg.model).model
        model = apply_lora(start, cfg.model.lora) if cfg.model.lora else start
        recipe = cfg.training
    result = train_on(model, lab.tokenizer, data, cfg, recipe, step_seed(seed, g, "train"), lab.max_positions, f"train {arm.name} g{g}")
    log = {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds, "init": arm.init}
    return model, log


# ---------------------------------------------------------------- human data, tokenizer, base


def load_human_docs(cfg: ExperimentConfig):
    from collapselab.datasets import load_splits

    return load_splits(cfg.data.dataset, cfg.data.path, seed=cfg.data.split_seed)


def human_pools(cfg: ExperimentConfig, splits) -> tuple[list[Record], list[Record]]:
    """The human training pool and test set, checked for the task's fields.

    lm: a seeded subset of documents holding about `train_size` (`test_size`) blocks of
    text; qa: a seeded subset of `train_size` (`test_size`) questions.
    """
    from collapselab.datasets import subset
    from collapselab.records import require_fields
    from collapselab.tasks import select_docs

    d = cfg.data
    where = f"data.dataset {d.dataset!r} for task {cfg.experiment.task!r}"
    if cfg.experiment.task == "lm":
        require_fields(splits.train + splits.test, ["text"], where=where)
        need = d.train_size * d.block_tokens if d.train_size else None
        test_need = d.test_size * d.block_tokens if d.test_size else None
        return select_docs(splits.train, need, d.split_seed, "train"), select_docs(splits.test, test_need, d.split_seed, "test")
    require_fields(splits.train + splits.test, ["context", "question"], where=where)
    return subset(splits.train, d.train_size, d.split_seed), subset(splits.test, d.test_size, d.split_seed)


def prepare_tokenizer(cfg: ExperimentConfig, train_pool: list[Record]):
    """Scratch: a BPE trained on the human training pool's text (cached). Else the model's own."""
    from collapselab.models import cached_tokenizer, load_tokenizer

    if cfg.model.name != "scratch":
        return load_tokenizer(cfg.model.name)
    if cfg.experiment.task == "lm":
        texts = [d.text for d in train_pool if d.text]
    else:
        texts = [f"{r.context}\n{r.question}\n{' '.join(r.answers)}" for r in train_pool]
    return cached_tokenizer(texts, cfg.model.scratch.vocab_size)


def prepare_human(cfg: ExperimentConfig, pools: tuple[list[Record], list[Record]], tokenizer) -> HumanData:
    """lm: the pools' running text cut into blocks of `data.block_tokens`; qa: the pools."""
    from collapselab.tasks import lm_blocks

    train, test = pools
    d = cfg.data
    if cfg.experiment.task == "lm":
        return HumanData(
            lm_blocks(train, tokenizer, d.block_tokens, d.train_size, "train"),
            lm_blocks(test, tokenizer, d.block_tokens, d.test_size, "test"),
        )
    return HumanData(train, test)


def prepare_scratch_base(lab: Lab, seed: int) -> Path:
    """Random init trained on the human pool with `model.pretrain`; cached by content hash,
    so every arm, and every run with the same data and recipe, shares the work."""
    if seed in lab.base_dirs:
        return lab.base_dirs[seed]
    from collapselab.models import (
        build_scratch_model,
        cache_root,
        content_hash,
        save_model,
        texts_hash,
    )
    from collapselab.tasks import train_on

    cfg = lab.cfg
    key = content_hash(
        "scratch-base-v1", cfg.experiment.task, texts_hash(json.dumps(r.to_dict(), sort_keys=True) for r in lab.human.train),
        lab.tokenizer.get_vocab(), cfg.model.scratch.model_dump(), cfg.model.pretrain.model_dump(), seed,
    )
    folder = cache_root() / "scratch" / key
    if not (folder / "config.json").exists():
        model = build_scratch_model(cfg.model.scratch, lab.tokenizer, step_seed(seed, 0, "init"))
        result = train_on(model, lab.tokenizer, lab.human.train, cfg, cfg.model.pretrain, step_seed(seed, 0, "train"), lab.max_positions, "pretrain base")
        log = {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds, "init": "scratch", "cache_key": key}
        save_model(model, lab.tokenizer, folder, extra_json={"train_log.json": log})
    lab.base_dirs[seed] = folder
    return folder


# ---------------------------------------------------------------- small parts


def _max_positions(cfg: ExperimentConfig, tokenizer) -> int:
    from collapselab.models import max_positions

    return cfg.model.scratch.max_positions if cfg.model.name == "scratch" else max_positions(cfg.model.name, tokenizer)


def _load(folder: Path, cfg: ExperimentConfig, for_training: bool = False) -> LoadedModel:
    from collapselab.models import load_saved

    return load_saved(folder, is_seq2seq=cfg.model.kind == "seq2seq", for_training=for_training)


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _done_generation0(lab: Lab, arm: ArmConfig, seed: int) -> Path | None:
    """A finished generation 0 of another arm with the same generation-0 data, if any."""
    for other in lab.cfg.arms:
        d = gen_dir(lab.run_dir, other.name, seed, 0)
        if other.data == arm.data and is_done(d):
            return d
    return None


def _copy_generation(src: Path, dest: Path) -> None:
    """Copy a finished generation folder (hard links where possible: the files never change)."""
    if dest.exists():
        shutil.rmtree(dest)
    tmp = dest.with_name(f".{dest.name}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=_link_or_copy)
    arm = dest.parent.parent.name
    metrics = json.loads((src / "metrics.json").read_text())
    metrics["arm"] = arm
    metrics["copied_from"] = str(src)
    (tmp / "metrics.json").unlink()
    atomic_write_json(tmp / "metrics.json", metrics)
    # provenance names the arm whose data it is, and where it was computed
    synthetic = []
    for r in read_records(src / "synthetic.parquet"):
        tag = json.loads(r.generator or "{}")
        tag.update(arm=arm, copied_from_arm=src.parent.parent.name)
        synthetic.append(r.derive(generator=json.dumps(tag, sort_keys=True)))
    (tmp / "synthetic.parquet").unlink()
    write_records(tmp / "synthetic.parquet", synthetic)
    log = _load_json(src / "model" / "train_log.json")
    (tmp / "model" / "train_log.json").unlink()
    atomic_write_json(tmp / "model" / "train_log.json", {**log, "copied_from": str(src / "model")})
    tmp.rename(dest)


def _link_or_copy(src: str, dst: str) -> None:
    import os

    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa

    from collapselab.records import atomic_write_parquet

    schema = pa.schema([(c, pa.string()) for c in ("example_id", "input", "reference", "prediction", "scores")])
    atomic_write_parquet(path, pa.Table.from_pylist(rows, schema=schema))


def _unigram(lab: Lab) -> dict[str, Any]:
    from collapselab.metrics.language import pack_test_blocks
    from collapselab.tasks import unigram_perplexity

    blocks = pack_test_blocks([r.text or "" for r in lab.human.test], lab.tokenizer, lab.cfg.training.seq_len)
    value = unigram_perplexity(lab.tokenizer, lab.human.train, blocks)
    return {"value": value, "version": "1", "higher_is_better": False, "details": {"what": "add-one unigram model of the human training tokens"}}


def _record(lab: Lab, arm: str, seed: int, g: int) -> None:
    from collapselab import store

    store.record_generation(lab.db_url, lab.run_dir, arm, seed, g)
