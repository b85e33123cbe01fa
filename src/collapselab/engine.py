"""The generation loop. Read it top to bottom.

For every seed and arm, generation g = 0..G-1:

    data_g ──train──▶ model_g ──generate──▶ synthetic_g ──▶ data_{g+1} = mix(policy, real, synthetic_0..g)
                         └──evaluate on the held-out human test set──▶ metrics_g, predictions_g

What a step means comes from the task object (`lab.task`: lm or qa); the engine never asks
for the task's name. Generation 0 is the same for every arm with the same generation-0
data and writer (data_0 is the human pool for every mix policy unless a refinery builder
makes it, and every init starts from the base), so it is computed once per seed and copied
to the other arms. Each step writes its output atomically and its existence marks it done:
running the same command again continues at the first missing file.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from collapselab.checks import check_experiment
from collapselab.config import ArmConfig, ExperimentConfig
from collapselab.datasets import load_splits
from collapselab.lab import Evaluation, Lab
from collapselab.lab.events import (
    GenerationFailed,
    GenerationFinished,
    GenerationStarted,
    Listener,
    Message,
    RunFinished,
    RunStarted,
    emit,
)
from collapselab.lab.mixing import mix
from collapselab.lab.starts import load_for_inference, load_for_training, scratch_base, start_model
from collapselab.metrics.external import generation_summary, load_reference, yardstick
from collapselab.metrics.registry import entries, entry
from collapselab.metrics.sanity import gibberish_background
from collapselab.metrics.stages import collapse_stage as stage_of
from collapselab.models.loading import (
    cached_tokenizer,
    device,
    load_tokenizer,
    max_positions,
    save_model,
)
from collapselab.models.prompts import prompt_format
from collapselab.outlets import with_outlets
from collapselab.outlets.hub import resume_from_hub
from collapselab.records import (
    Record,
    atomic_write_json,
    read_records,
    require_fields,
    write_records,
)
from collapselab.refinery import (
    build_arm_data,
    build_arms_data,
    generator_name,
    write_with_generator,
)
from collapselab.refinery.verifier import verified
from collapselab.rundir.folders import check_run_id, lock_run, open_run, runtime, supersede_from
from collapselab.rundir.generation import (
    METRICS,
    MODEL,
    SYNTHETIC,
    TRAIN_LOG,
    GenerationFolder,
    finished,
    write_evaluation,
)
from collapselab.rundir.metrics_file import RUN_METRICS, RunMetrics, write_metrics_file
from collapselab.seeds import step_seed
from collapselab.tasks import get_task, mcq

# ---------------------------------------------------------------- the run


def run_experiment(
    cfg: ExperimentConfig,
    *,
    fresh: bool = False,
    run_id: str | None = None,
    restart_from: int | None = None,
    db_url: str | None = None,
    listeners: Sequence[Listener] = (),
    write_report: Callable[[Path], Path] | None = None,
) -> Path:
    """Run (or continue) every seed x arm x generation of `cfg`; returns the run directory.

    Args:
        cfg: The resolved experiment config.
        fresh: Start a new run instead of continuing the experiment's latest one.
        run_id: Continue (or create) this run.
        restart_from: Redo generation `restart_from` and later (old results moved aside).
        db_url: Results database URL (None: `$COLLAPSELAB_DB`, else the SQLite default).
        listeners: Called with every `collapselab.lab.events` event, in order; the trackers, hub
            push and notifiers of the config's `tracking:`, `hub:` and `notify:` blocks follow.
        write_report: Writes a run directory's report and returns its folder, for the trackers
            to log when the run ends (the faces hand it in: `collapselab.report`); None: they
            log the config without a report.
    """
    from collapselab import store

    # Bad data, an unknown model or a config the run would fail on late fails here,
    # before any run directory is touched.
    check_run_id(run_id)
    task = get_task(cfg.experiment.task)
    pools = human_pools(cfg, task)
    tokenizer = prepare_tokenizer(cfg, task, pools[0])
    human = task.prepare_human(cfg, pools, tokenizer)
    positions = _max_positions(cfg, tokenizer)

    background = gibberish_background(cfg, task)  # read before any run directory is touched
    # Everything that would otherwise fail after hours of training, all of it at once.
    check_experiment(cfg, here=True, human=human, tokenizer=tokenizer, max_positions=positions, background=background)
    store.connect(db_url).dispose()  # raises DatabaseUnreachable (exit 3) naming the URL

    reference = load_reference(cfg, task)  # the fixed external reference, once per run (None: not used)
    mmlu = mcq.questions(cfg.evaluation.mmlu) if cfg.evaluation.mmlu is not None else None  # names a missing file or subject now
    listeners = with_outlets(cfg, listeners, write_report)  # trackers, hub push, notifications the config asks for
    run_dir = open_run(cfg, fresh=fresh, run_id=run_id)
    lock = lock_run(run_dir)  # one writer per run: a second command stops here (RunLocked, exit 2)
    try:
        if lock.taken_over is not None:
            emit(listeners, Message(f"took over {lock.path}: its holder (pid {lock.taken_over.get('pid')}, started "
                                    f"{lock.taken_over.get('started')}) is no longer running"))
        if cfg.hub is not None:  # generations pushed from another machine are downloaded, not recomputed
            for line in resume_from_hub(cfg, run_dir):
                emit(listeners, Message(line))
        resumed = bool(finished(run_dir))  # finished steps before this invocation
        if restart_from is not None:
            moved = supersede_from(run_dir, cfg, restart_from)
            emit(listeners, Message(f"restarting from generation {restart_from}: moved {len(moved)} generation folders to {run_dir / '.superseded'}"))
        # Records the run and every generation already DONE: a crash between DONE and its
        # database write (or a database that was down) is repaired on the next invocation.
        store.import_run_dir(db_url, run_dir)
        if restart_from is not None:
            store.forget_generations(db_url, run_dir, moved)
        store.record_run_status(db_url, run_dir, "running")  # the dashboard's Runs page reads these
        lab = Lab(cfg, task, run_dir, human, tokenizer, positions, task.max_new_tokens(cfg), prompt_format(tokenizer, cfg.prompts),
                  reference, background, mmlu, db_url, list(listeners))
        emit(listeners, RunStarted(run_dir, run_dir.name, cfg.experiment.name, cfg, resumed))
        emit(listeners, Message(f"run {run_dir} | {len(human.train)} human training records, {len(human.test)} test records"))
        try:
            if reference is not None:
                record_reference(lab)  # in the manifest; the human test set under it once per run (run_metrics.json)
            for seed in cfg.experiment.seeds:
                build_refinery_data(lab, seed)  # the generator loaded once per seed, freed before any training
                for arm in cfg.arms:
                    run_arm(lab, arm, seed)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM through the CLI (errors.Interrupted)
            store.record_run_status(db_url, run_dir, "interrupted")
            raise
        except store.DatabaseUnreachable:  # it cannot hear of it; the next invocation records what is missing
            raise
        except BaseException as e:  # a stopped run is not running
            store.record_run_status(db_url, run_dir, "failed", error=f"{type(e).__name__}: {e}")
            raise
        store.record_run_status(db_url, run_dir, "done")
        emit(listeners, RunFinished(run_dir, run_dir.name))
    finally:
        lock.release()
    return run_dir


def run_arm(lab: Lab, arm: ArmConfig, seed: int) -> None:
    synthetic: list[list[Record]] = []  # synthetic[k]: what model_k wrote
    for g in range(lab.cfg.experiment.generations):
        folder = GenerationFolder(lab.run_dir, arm.name, seed, g)
        if not folder.is_done():
            emit(lab.listeners, GenerationStarted(lab.run_dir, arm.name, seed, g))
            sibling = _done_generation0(lab, arm, seed) if g == 0 else None
            try:
                if sibling is not None:
                    _copy_generation(sibling, folder)
                else:
                    run_generation(lab, arm, seed, g, synthetic, folder)
                _record(lab, arm.name, seed, g)
            except BaseException as e:
                emit(lab.listeners, GenerationFailed(lab.run_dir, arm.name, seed, g, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
                raise
            values = {k: v for k, v in folder.read_metrics().values().items() if v is not None}
            emit(lab.listeners, GenerationFinished(lab.run_dir, arm.name, seed, g, folder.path, values, sibling.path if sibling else None))
        synthetic.append(read_records(folder.synthetic))


def run_generation(lab: Lab, arm: ArmConfig, seed: int, g: int, synthetic: list[list[Record]], folder: GenerationFolder) -> None:
    cfg, task = lab.cfg, lab.task
    timings = _load_json(folder.timings)

    # 1. data_g (generation 0 of a contaminated or synthetic arm comes from the refinery)
    if not folder.train.exists():
        if g == 0 and arm.data != "human":
            built = build_arm_data(lab, arm, seed, step_seed(seed, 0, "refinery"))
            write_records(folder.rejected, built.rejected)
            atomic_write_json(folder.refinery, built.stats)
            write_records(folder.train, built.records)
        else:
            policy = arm.at_generation(g)  # arms[].schedule may have changed the mix policy by now
            pool = verified(lab, policy, seed, g, synthetic, folder)  # arms[].verify: only what passed the filters
            write_records(folder.train, mix(policy, g, real_pool(lab, arm, seed), pool, step_seed(seed, g, "mix")))
    data = read_records(folder.train)

    # 2. model_g
    if not folder.model.exists():
        t0 = time.perf_counter()
        model, log = train_generation(lab, arm, seed, g, data)
        save_model(model, lab.tokenizer, folder.model, extra_json={TRAIN_LOG: log})
        timings["train_s"] = time.perf_counter() - t0
        atomic_write_json(folder.timings, timings)
        del model
    current = load_for_inference(lab, folder.model)

    # 3. synthetic_g: what the next generation trains on (the last one's is measured only)
    if not folder.synthetic.exists():
        t0 = time.perf_counter()
        if arm.writer == "generator":  # the refinery's generator writes instead of model_g
            written = write_with_generator(lab, arm, seed, g, step_seed(seed, g, "generate"))
        else:
            written = task.write_synthetic(lab, current, arm, g, step_seed(seed, g, "generate"))
        write_records(folder.synthetic, written)
        timings["generate_s"] = time.perf_counter() - t0
        atomic_write_json(folder.timings, timings)
    own = read_records(folder.synthetic)

    # 4. evaluate on the held-out human test set, under model_g and the arm's generation-0 model
    t0 = time.perf_counter()
    g0 = GenerationFolder(lab.run_dir, arm.name, seed, 0)
    generation0 = current if g == 0 else load_for_inference(lab, g0.model)
    result = score_model(lab, current, generation0, own, step_seed(seed, g, "evaluate"))
    metrics = result.metrics
    if g == 0:
        # The baselines (lm: a unigram model of the human pool; qa: the pretrained model's
        # greedy zero-shot answers) depend on neither arm nor seed: computed once per run.
        if lab.baselines is None:
            lab.baselines = task.baselines(lab, lambda: _pretrained_start(lab), step_seed(seed, 0, "baseline"))
        metrics.update(copy.deepcopy(lab.baselines))
    stage = collapse_stage(lab, metrics, None if g == 0 else g0.read_metrics().model_dump()["metrics"])
    if stage is not None:
        metrics["collapse_stage"] = stage
    timings["evaluate_s"] = time.perf_counter() - t0

    write_evaluation(
        folder, metrics=metrics, predictions=result.predictions, synthetic_scores=result.synthetic_scores,
        train=data, synthetic=own, train_log=_load_json(folder.train_log), timings=timings, runtime=runtime(cfg.decoding),
        refinery=_load_json(folder.refinery) or None, reference=generation_summary(metrics, lab.reference),
    )


def score_model(lab: Lab, model: Any, generation0: Any, synthetic: list[Record] | None, seed: int) -> Evaluation:
    """Score `model` on the held-out human test set: the task's metrics (of its synthetic data
    too, when given) and MMLU when `evaluation.mmlu` is set. A generation's scoring, and
    `collapselab evaluate`'s (`collapselab.evaluation`): one path for both."""
    result = lab.task.evaluate(lab, model, generation0, synthetic, seed)
    if lab.mmlu is not None:
        result.metrics.update(mcq.evaluate(model, lab.tokenizer, lab.cfg.evaluation.mmlu, lab.mmlu, lab.max_positions))
    return result


def build_refinery_data(lab: Lab, seed: int) -> None:
    """Generation 0's data of every contaminated or synthetic arm of `seed` still missing it,
    from one generator load (`refinery.generator_model` or the base) freed before the engine
    trains anything. An arm whose generation 0 another arm of the same data and writer makes
    is left to copy that arm's finished generation 0 (`_done_generation0`)."""
    todo: list[tuple[ArmConfig, GenerationFolder]] = []
    kinds: set[tuple[str, str]] = set()
    for arm in lab.cfg.arms:
        if arm.data == "human" or (arm.data, arm.writer) in kinds:
            continue
        kinds.add((arm.data, arm.writer))
        folder = GenerationFolder(lab.run_dir, arm.name, seed, 0)
        if not (folder.is_done() or folder.train.exists()):
            todo.append((arm, folder))
    if not todo:
        return
    emit(lab.listeners, Message(f"refinery: {generator_name(lab)} writes generation 0 of {', '.join(a.name for a, _ in todo)} (seed {seed})"))
    built = build_arms_data(lab, [a for a, _ in todo], seed, step_seed(seed, 0, "refinery"))
    for (_, folder), b in zip(todo, built, strict=True):
        write_records(folder.rejected, b.rejected)
        atomic_write_json(folder.refinery, b.stats)
        write_records(folder.train, b.records)


def train_generation(lab: Lab, arm: ArmConfig, seed: int, g: int, data: list[Record]) -> tuple[Any, dict[str, Any]]:
    """Build model_g's starting point from the arm's init policy and train it on data_g."""
    cfg = lab.cfg
    if g == 0 and cfg.model.name == "scratch" and arm.data == "human":
        # A scratch model's generation 0 *is* the base: random init trained on the human pool.
        base = scratch_base(lab, seed)
        return load_for_training(lab, base), _load_json(base / TRAIN_LOG)
    model, recipe = start_model(lab, arm, seed, g)
    result = lab.task.train(lab, model, data, recipe, step_seed(seed, g, "train"), f"train {arm.name} g{g}")
    log = {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds, "init": arm.init,
           "validation": result.validation, "best_step": result.best_step, "stopped_early": result.stopped_early,
           "mean_loss_weight": result.mean_loss_weight}
    return model, log


def real_pool(lab: Lab, arm: ArmConfig, seed: int) -> list[Record]:
    """The "real" data a mix draws on after generation 0: the human pool, or for an arm whose
    generation 0 a refinery builder made (contaminated, synthetic), that arm's own data_0, so
    its later generations keep mixing the data it started from."""
    if arm.data == "human":
        return lab.human.train
    return read_records(GenerationFolder(lab.run_dir, arm.name, seed, 0).train)


def collapse_stage(lab: Lab, metrics: dict[str, Any], gen0: dict[str, Any] | None) -> dict[str, Any] | None:
    """The collapse stage A/B/C of this generation, when its inputs exist: an accuracy
    (`mmlu_accuracy` when MMLU is evaluated, else the task's own) and generation 0's."""

    def accuracy(m: dict[str, Any]) -> tuple[float, float, str] | None:
        if "mmlu_accuracy" in m:
            value = m["mmlu_accuracy"]["value"]
            return None if value is None else (value, 0.25, "mmlu_accuracy")
        own = lab.task.stage_inputs(m)
        return None if own is None else (*own, lab.task.name)

    now = accuracy(metrics)
    first = now if gen0 is None else accuracy(gen0)
    if now is None or first is None:
        return None
    gib = metrics.get("gibberish_score")
    s = stage_of(now[0], first[0], chance=now[1], gibberish=gib["value"] if gib else None, thresholds=lab.cfg.evaluation.stages)
    return entry("collapse_stage", float("ABC".index(s.stage)),
                 {"stage": s.stage, "reason": s.reason, "retained": s.retained, "accuracy": now[2]})


def record_reference(lab: Lab) -> None:
    """Name the run's reference model in its manifest and write the human yardstick into
    run_metrics.json, once per run (a resumed run has the same config hash, so the same
    reference: what an earlier invocation wrote stands)."""

    reference, cfg = lab.reference, lab.cfg
    path = lab.run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    if manifest.get("reference_model") != reference.manifest():
        atomic_write_json(path, {**manifest, "reference_model": reference.manifest()})
    if (lab.run_dir / RUN_METRICS).exists():
        return
    results = yardstick(reference, lab.task, lab.human.test, sequences=cfg.evaluation.reference_sequences,
                        seq_len=cfg.training.seq_len, batch_tokens=cfg.evaluation.batch_tokens, device=device(),
                        seed=step_seed(cfg.data.split_seed, 0, "reference"))
    write_metrics_file(lab.run_dir / RUN_METRICS, RunMetrics.model_validate({"reference_model": reference.name, "metrics": entries(results)}))


# ---------------------------------------------------------------- human data, tokenizer


def human_pools(cfg: ExperimentConfig, task: Any) -> tuple[list[Record], list[Record]]:
    """The human training pool and test set, checked for the task's fields."""

    d = cfg.data
    splits = load_splits(d.dataset, d.path, seed=d.split_seed)
    require_fields(splits.train + splits.test, list(task.record_fields), where=f"data.dataset {d.dataset!r} for task {task.name!r}")
    return task.human_pools(cfg, splits)


def prepare_tokenizer(cfg: ExperimentConfig, task: Any, train_pool: list[Record]):
    """Scratch: a BPE trained on the human training pool's text (cached). Else the model's own."""

    if cfg.model.name != "scratch":
        return load_tokenizer(cfg.model.name)
    return cached_tokenizer(task.tokenizer_texts(train_pool), cfg.model.scratch.vocab_size)


# ---------------------------------------------------------------- small parts


def _pretrained_start(lab: Lab) -> Any | None:
    """The pretrained base before any fine-tuning (for zero-shot baselines); None for scratch."""
    if lab.cfg.model.name == "scratch":
        return None
    return load_for_inference(lab, lab.cfg.model.name)


def _max_positions(cfg: ExperimentConfig, tokenizer) -> int:
    return cfg.model.scratch.max_positions if cfg.model.name == "scratch" else max_positions(cfg.model.name, tokenizer)


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _done_generation0(lab: Lab, arm: ArmConfig, seed: int) -> GenerationFolder | None:
    """A finished generation 0 of another arm with the same generation-0 data and writer, if any."""
    for other in lab.cfg.arms:
        d = GenerationFolder(lab.run_dir, other.name, seed, 0)
        if (other.data, other.writer) == (arm.data, arm.writer) and d.is_done():
            return d
    return None


def _copy_generation(src: GenerationFolder, dest: GenerationFolder) -> None:
    """Copy a finished generation folder (hard links where possible: the files never change)."""

    if dest.path.exists():
        shutil.rmtree(dest.path)
    tmp = dest.path.with_name(f".{dest.path.name}.copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src.path, tmp, copy_function=_link_or_copy)
    metrics = src.read_metrics().model_copy(update={"arm": dest.arm, "copied_from": str(src.path)})
    (tmp / METRICS).unlink()
    write_metrics_file(tmp / METRICS, metrics)
    # provenance names the arm whose data it is, and where it was computed
    synthetic = []
    for r in read_records(src.synthetic):
        tag = json.loads(r.generator or "{}")
        tag.update(arm=dest.arm, copied_from_arm=src.arm)
        synthetic.append(r.derive(generator=json.dumps(tag, sort_keys=True)))
    (tmp / SYNTHETIC).unlink()
    write_records(tmp / SYNTHETIC, synthetic)
    log = _load_json(src.train_log)
    copied_log = tmp / MODEL / TRAIN_LOG
    copied_log.unlink()
    atomic_write_json(copied_log, {**log, "copied_from": str(src.model)})
    tmp.rename(dest.path)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _record(lab: Lab, arm: str, seed: int, g: int) -> None:
    from collapselab import store

    store.record_generation(lab.db_url, lab.run_dir, arm, seed, g)
