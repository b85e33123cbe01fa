"""Where a generation's training starts: the base model of an arm and the init policies.

- `scratch_base`: a scratch model's base, random init trained on the human pool with
  `model.pretrain`, cached by content hash (every arm and every run with the same data and
  recipe shares it).
- `fine_tune_start`: the base model, loaded to be trained, with fresh LoRA adapters when
  `model.lora` is set: where `init: base` starts, and where the refinery's generator starts.
- `start_model`: the starting point of generation g of an arm, by its init policy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.cache import filled
from collapselab.models.loading import (
    apply_lora,
    build_scratch_model,
    cache_root,
    content_hash,
    load_model,
    save_model,
    texts_hash,
)
from collapselab.rundir.generation import TRAIN_LOG, GenerationFolder
from collapselab.seeds import step_seed

if TYPE_CHECKING:
    from collapselab.config import ArmConfig, TrainingBlock
    from collapselab.lab.contract import Lab


def scratch_base(lab: Lab, seed: int) -> Path:
    """The folder of the scratch base for `seed` (trained on first use, then cached)."""
    if seed in lab.base_dirs:
        return lab.base_dirs[seed]

    cfg = lab.cfg
    key = content_hash(
        "scratch-base-v1", cfg.experiment.task, texts_hash(json.dumps(r.to_dict(), sort_keys=True) for r in lab.human.train),
        lab.tokenizer.get_vocab(), cfg.model.scratch.model_dump(), cfg.model.pretrain.model_dump(), seed,
    )

    def pretrain(tmp: Path) -> None:  # once per key: other processes wait for it, then load it
        model = build_scratch_model(cfg.model.scratch, lab.tokenizer, step_seed(seed, 0, "init"))
        result = lab.task.train(lab, model, lab.human.train, cfg.model.pretrain, step_seed(seed, 0, "train"), "pretrain base")
        log = {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds,
               "init": "scratch", "cache_key": key}
        save_model(model, lab.tokenizer, tmp, extra_json={TRAIN_LOG: log})

    folder = filled(cache_root() / "scratch" / key, pretrain)
    lab.base_dirs[seed] = folder
    return folder


def base_source(lab: Lab, seed: int) -> str:
    """What the base model is loaded from: the cached scratch base, or `model.name`."""
    return str(scratch_base(lab, seed)) if lab.cfg.model.name == "scratch" else lab.cfg.model.name


def load_for_training(lab: Lab, source: str | Path) -> Any:
    """A model folder or name loaded to be trained (fp32)."""

    return load_model(source, seq2seq=lab.cfg.model.kind == "seq2seq", for_training=True).model


def load_for_inference(lab: Lab, source: str | Path) -> Any:
    """A model folder or name loaded to generate and be evaluated (bf16 on a GPU)."""

    return load_model(source, seq2seq=lab.cfg.model.kind == "seq2seq", for_training=False).model


def fine_tune_start(lab: Lab, seed: int) -> Any:
    """The base model ready to fine-tune: fp32, with fresh LoRA adapters if configured."""

    model = load_for_training(lab, base_source(lab, seed))
    return apply_lora(model, lab.cfg.model.lora, seed=step_seed(seed, 0, "lora")) if lab.cfg.model.lora else model


def start_model(lab: Lab, arm: ArmConfig, seed: int, g: int) -> tuple[Any, TrainingBlock]:
    """Generation g's starting model and the recipe that trains it, by the arm's init policy.

    scratch: a fresh random init every generation, trained like the base (`model.pretrain`);
    previous: generation g-1's model (g > 0); base: the base model. Fine-tuning uses
    `training` and LoRA when configured.
    """

    cfg = lab.cfg
    if arm.init == "scratch" or (g == 0 and cfg.model.name == "scratch"):
        return build_scratch_model(cfg.model.scratch, lab.tokenizer, step_seed(seed, g, "init")), cfg.model.pretrain
    if arm.init == "previous" and g > 0:
        model = load_for_training(lab, GenerationFolder(lab.run_dir, arm.name, seed, g - 1).model)
        return (apply_lora(model, cfg.model.lora, seed=step_seed(seed, g, "lora")) if cfg.model.lora else model), cfg.training
    return fine_tune_start(lab, seed), cfg.training
