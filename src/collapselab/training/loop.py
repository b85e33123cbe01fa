"""Fine-tuning: causal LM training on packed blocks, and supervised (prompt -> target) training.

Both entry points share one loop (`_run`): AdamW over the trainable parameters only (so a
peft LoRA model trains only its adapters), linear warmup then cosine decay, gradient
accumulation with the loss normalised by the tokens of the whole optimizer step, gradient
clipping, a data order drawn from a seeded `torch.Generator`. On CPU the model stays fp32
(bf16 matmul is ~150x slower than fp32 on the CPUs we run on); on CUDA `precision: auto`
autocasts to bf16.

Batches are sized by a token budget (`TrainingBlock.batch_tokens`), never by a count:
- `train_lm` packs every document, each followed by EOS, into one stream cut into
  `seq_len` blocks: no padding at all, and no attention mask, so SDPA takes its causal
  fast path.
- `train_supervised` groups examples of similar length (dynamic padding): a batch is padded
  only to its own longest example.

The loss never materialises a batch's logits: the model runs with its LM head detached and
`lm_loss.head_loss` applies the head to the loss-bearing rows a chunk at a time (a 49k
vocabulary's fp32 logits are the memory hog of training a 135M model).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from collapselab import textio
from collapselab.batching import token_budget_batches
from collapselab.models import kernels
from collapselab.training import distributed
from collapselab.training.early_stopping import EarlyStopping, Validator, check_recipe, validate
from collapselab.training.token_loss import (
    base_model,
    check_head,
    detached_head,
    head_loss,
    output_layer,
)

if TYPE_CHECKING:
    from collapselab.config import TrainingBlock

IGNORE = -100  # label of tokens that carry no loss (prompt tokens, padding)


@dataclass
class TrainResult:
    """What a training call did.

    Attributes:
        losses: Per optimizer step, the (weighted) mean token loss of its micro-batches.
        steps: Optimizer steps taken (fewer than planned when early stopping stopped it).
        tokens: Real (non-pad) tokens trained on.
        seconds: Wall time of the loop, validation included.
        target_tokens: Tokens that carried a loss (the LM head ran on these rows only).
        row_tokens: Real tokens of every sequence trained on, in order (what FLOP counts of
            causal attention, about n^2 per sequence, need).
        validation: (step, value) at each validation: the score callback's value, or the
            validation token loss.
        best_step: The step whose weights the model holds at the end when early stopping
            restored the best ones; None without early stopping.
        stopped_early: True when patience ran out before the planned steps.
        mean_loss_weight: Mean per-example loss weight given; None without weights.
    """

    losses: list[float]
    steps: int
    tokens: int
    seconds: float
    target_tokens: int = 0
    row_tokens: list[int] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False
    mean_loss_weight: float | None = None


@dataclass
class _Batch:
    # model inputs: input_ids, and attention_mask / decoder_input_ids for seq2seq
    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor  # (B, T) aligned with the logits: position t predicts labels[:, t]
    rows: list[int]  # real (non-pad) tokens of each row
    weights: torch.Tensor | None = None  # (B,) loss weight of each row's example; None = 1

    @property
    def tokens(self) -> int:
        return sum(self.rows)


@distributed.data_parallel
def train_lm(
    model: Any,
    docs: Sequence[Sequence[int]],
    cfg: TrainingBlock,
    *,
    eos_id: int,
    seed: int,
    sequences: Sequence[Sequence[int]] = (),
    desc: str = "train",
    progress: bool = True,
) -> TrainResult:
    """Train a causal LM on documents packed into blocks, and on separate sequences; loss on
    every token.

    Args:
        model: A transformers causal LM (or a peft model wrapping one), fp32.
        docs: Token ids per document; each is followed by `eos_id` in the packed stream.
        cfg: Steps / epochs, optimizer, schedule, `seq_len` and the micro-batch token budget.
        eos_id: Separator appended after every document.
        seed: Seed of the data order (and of dropout).
        sequences: Texts that never followed each other (e.g. generated continuations): each
            is its own row `EOS ids` (the EOS gives its first token a context), cut to
            `seq_len`, so no token attends across two of them. Batched by length.
        desc: Progress bar label.
        progress: Show a progress bar (with ETA) on stderr.

    Returns:
        Per-step losses, steps, tokens trained on and seconds.
    """
    stream = torch.tensor([t for doc in docs for t in (*doc, eos_id)], dtype=torch.long)
    rows = [[eos_id, *seq[: cfg.seq_len - 1]] for seq in sequences if len(seq)]
    if stream.numel() < 2 and not rows:
        raise ValueError("train_lm: docs and sequences hold no tokens")
    # Blocks start every seq_len tokens; as in nanoGPT a block's targets are the stream shifted
    # by one, so a block's last token is trained on the next block's first and every token
    # but the stream's first is a target. The ragged tail is one more, shorter block, padded
    # with EOS after its real tokens (causal attention never lets a real token see them).
    starts = list(range(0, stream.numel() - 1, cfg.seq_len)) if stream.numel() >= 2 else []
    per_batch = max(1, cfg.batch_tokens // cfg.seq_len)
    row_lengths = [len(r) for r in rows]

    def block_batch(chosen: list[int]) -> _Batch:
        ids = torch.full((len(chosen), cfg.seq_len), eos_id, dtype=torch.long)  # (B, T)
        labels = torch.full((len(chosen), cfg.seq_len), IGNORE, dtype=torch.long)
        real = []
        for row, s in enumerate(chosen):
            block = stream[s : s + cfg.seq_len]
            targets = stream[s + 1 : s + cfg.seq_len + 1]
            ids[row, : block.numel()] = block
            labels[row, : targets.numel()] = targets
            real.append(block.numel())
        return _Batch({"input_ids": ids}, labels, real)

    def row_batch(chosen: list[int]) -> _Batch:
        # Right-padded, no mask: pads come after every real token (see _collate_causal).
        width = max(row_lengths[i] for i in chosen)
        ids = torch.full((len(chosen), width), eos_id, dtype=torch.long)  # (B, T)
        labels = torch.full((len(chosen), width), IGNORE, dtype=torch.long)
        for row, i in enumerate(chosen):
            seq = torch.tensor(rows[i], dtype=torch.long)
            ids[row, : seq.numel()] = seq
            labels[row, : seq.numel() - 1] = seq[1:]
        return _Batch({"input_ids": ids}, labels, [row_lengths[i] for i in chosen])

    def epoch(gen: torch.Generator) -> Iterator[_Batch]:
        order = torch.randperm(len(starts), generator=gen).tolist()
        batches = [
            ("block", [starts[i] for i in order[f : f + per_batch]])
            for f in range(0, len(order), per_batch)
        ]
        if rows:
            perm = torch.randperm(len(rows), generator=gen).tolist()
            perm.sort(key=lambda i: row_lengths[i])
            batches += [
                ("rows", b) for b in token_budget_batches(row_lengths, cfg.batch_tokens, order=perm)
            ]
            batches = [batches[j] for j in torch.randperm(len(batches), generator=gen).tolist()]
        for kind, chosen in batches:
            yield block_batch(chosen) if kind == "block" else row_batch(chosen)

    n_batches = math.ceil(len(starts) / per_batch) + (
        len(token_budget_batches(row_lengths, cfg.batch_tokens)) if rows else 0
    )
    check_recipe(cfg, validation=False, score=False, weights=False, where=f"{desc} (train_lm)")
    return _run(model, epoch, n_batches, cfg, seed=seed, desc=desc, progress=progress)


@distributed.data_parallel
def train_supervised(
    model: Any,
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    cfg: TrainingBlock,
    *,
    pad_id: int,
    seed: int,
    weights: Sequence[float] | None = None,
    validation: Sequence[tuple[Sequence[int], Sequence[int]]] | None = None,
    score: Callable[[Any], float] | None = None,
    desc: str = "train",
    progress: bool = True,
) -> TrainResult:
    """Train on (prompt_ids, target_ids) pairs with loss on the target tokens only.

    Causal LMs see prompt + target (append EOS to the target if the model should learn to
    stop); seq2seq models see the prompt in the encoder and the target as labels. Batches
    group examples of similar length and are padded only to their own longest example.

    Per-example weights (e.g. SelfPlagAI's BERTScore weighting) make the step's loss the
    weighted mean token loss, sum_i w_i * sum_t CE_it / sum_i w_i * n_i: the cross-entropy is
    what is differentiated; the weights are constants that only reweight examples (no
    gradient flows through whatever computed them). Weights that are all equal give exactly
    the unweighted loss.

    Early stopping (`cfg.early_stopping_patience`): every `cfg.eval_every` optimizer steps
    (default once per epoch) and after the last step the model is validated, by `score(model)`
    (higher is better; e.g. BERTScore F1 of its answers on held-out questions) or, without a
    callback, by the token loss on `validation` (lower is better); after `patience`
    validations without an improvement of more than `cfg.early_stopping_min_delta`
    training stops, and the trainable weights of the best validation are restored.

    Args:
        model: A transformers causal LM or seq2seq model (or a peft model wrapping one), fp32.
        pairs: (prompt token ids, target token ids) per example; targets must be non-empty.
        cfg: Steps / epochs, optimizer, schedule, the micro-batch token budget, validation.
        pad_id: Padding token id.
        seed: Seed of the data order (and of dropout).
        weights: Loss weight per pair (>= 0, not all 0); None = uniform.
        validation: Held-out pairs (not in `pairs`) for the validation loss.
        score: Called with the model in eval mode under no_grad; returns the validation
            metric, higher is better. Its random draws do not disturb training's.
        desc: Progress bar label.
        progress: Show a progress bar (with ETA) on stderr.

    Returns:
        Per-step losses, steps, tokens trained on, seconds, and the validations.
    """
    if not pairs:
        raise ValueError("train_supervised: no pairs")
    _check_targets(pairs, "pairs")
    if weights is not None:
        if len(weights) != len(pairs):
            raise ValueError(f"train_supervised: {len(weights)} weights for {len(pairs)} pairs")
        if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
            raise ValueError("train_supervised: weights must be finite, >= 0 and not all 0")
    encoder_decoder = bool(base_model(model).config.is_encoder_decoder)
    lengths = _lengths(pairs, encoder_decoder)

    def collate(chosen: list[int], source=pairs, w: Sequence[float] | None = weights) -> _Batch:
        batch = (
            _collate_seq2seq(model, [source[i] for i in chosen], pad_id)
            if encoder_decoder
            else _collate_causal([source[i] for i in chosen], pad_id)
        )
        if w is not None:
            batch.weights = torch.tensor([float(w[i]) for i in chosen], dtype=torch.float32)
        return batch

    def epoch(gen: torch.Generator) -> Iterator[_Batch]:
        # Shuffle, then stable-sort by length: equal lengths land in a fresh random order each
        # epoch; then cut by the token budget and shuffle the batches themselves.
        perm = torch.randperm(len(pairs), generator=gen).tolist()
        perm.sort(key=lambda i: lengths[i])
        batches = token_budget_batches(lengths, cfg.batch_tokens, order=perm)
        for j in torch.randperm(len(batches), generator=gen).tolist():
            yield collate(batches[j])

    validator = None
    if score is not None:

        def scored(head: torch.nn.Module) -> float:
            with output_layer(model, head):  # the whole model again, for generation
                return float(score(model))

        validator = Validator(scored, higher_is_better=True)
    elif validation:
        _check_targets(validation, "validation")
        held_out = token_budget_batches(_lengths(validation, encoder_decoder), cfg.batch_tokens)
        val_batches = [collate(b, validation, None) for b in held_out]
        validator = Validator(
            lambda head: _validation_loss(model, head, val_batches), higher_is_better=False
        )
    check_recipe(
        cfg,
        validation=bool(validation),
        score=score is not None,
        weights=weights is not None,
        where=f"{desc} (train_supervised)",
    )
    n_batches = len(token_budget_batches(lengths, cfg.batch_tokens))
    result = _run(
        model, epoch, n_batches, cfg, seed=seed, desc=desc, progress=progress, validator=validator
    )
    if weights is not None:
        result.mean_loss_weight = sum(weights) / len(weights)
    return result


def _check_targets(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], what: str) -> None:
    if any(len(t) == 0 for _, t in pairs):
        raise ValueError(f"train_supervised: every target in {what} needs at least one token")


def _lengths(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], encoder_decoder: bool
) -> list[int]:
    if encoder_decoder:
        return [max(len(p), len(t)) for p, t in pairs]
    return [len(p) + len(t) for p, t in pairs]


def _collate_causal(pairs: list[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> _Batch:
    width = max(len(p) + len(t) for p, t in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    for row, (p, t) in enumerate(pairs):
        seq = torch.tensor([*p, *t], dtype=torch.long)
        ids[row, : seq.numel()] = seq
        # Position k predicts token k+1, so target tokens sit at labels[len(p)-1 : n-1]; with
        # an empty prompt the first target token has no position that predicts it.
        first = max(len(p), 1)
        labels[row, first - 1 : seq.numel() - 1] = seq[first:]
    # Right padding and no attention mask: pads come after every real token, so causal
    # attention never lets a real token see one, and SDPA keeps its mask-free causal kernel.
    return _Batch({"input_ids": ids}, labels, [len(p) + len(t) for p, t in pairs])


def _collate_seq2seq(
    model: Any, pairs: list[tuple[Sequence[int], Sequence[int]]], pad_id: int
) -> _Batch:
    src_w = max(1, max(len(p) for p, _ in pairs))
    tgt_w = max(len(t) for _, t in pairs)
    ids = torch.full((len(pairs), src_w), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), src_w), dtype=torch.long)
    labels = torch.full((len(pairs), tgt_w), IGNORE, dtype=torch.long)
    for row, (p, t) in enumerate(pairs):
        ids[row, : len(p)] = torch.tensor(p, dtype=torch.long)
        mask[row, : len(p)] = 1
        labels[row, : len(t)] = torch.tensor(t, dtype=torch.long)
    decoder_input_ids = base_model(model).prepare_decoder_input_ids_from_labels(labels=labels)
    inputs = {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": decoder_input_ids}
    return _Batch(inputs, labels, [len(p) + len(t) for p, t in pairs])


def _use_all_cores() -> None:
    # torch's default already follows the cores on most builds; an explicit OMP_NUM_THREADS
    # or MKL_NUM_THREADS is the user's choice and wins.
    if not {"OMP_NUM_THREADS", "MKL_NUM_THREADS"} & os.environ.keys():
        torch.set_num_threads(os.cpu_count() or 1)


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    if device.type == "cpu" and precision == "bf16":
        raise ValueError(
            "training.precision: 'bf16' on CPU is ~150x slower than fp32; use 'auto' or 'fp32'"
        )
    bf16 = device.type == "cuda" and precision in ("auto", "bf16")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def _optimizer(
    params: list[torch.nn.Parameter], cfg: TrainingBlock, device: torch.device
) -> torch.optim.AdamW:
    # nanoGPT's split: decay matrices, not biases / norm gains.
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # Fused AdamW has CPU and CUDA kernels (torch >= 2.4): one kernel over all parameters.
    return torch.optim.AdamW(
        groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type in ("cpu", "cuda")
    )


def _lr_lambda(total: int, warmup: int) -> Any:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _run(
    model: Any,
    epoch: Callable[[torch.Generator], Iterator[_Batch]],
    n_batches: int,
    cfg: TrainingBlock,
    *,
    seed: int,
    desc: str,
    progress: bool,
    validator: Validator | None = None,
) -> TrainResult:
    """The shared loop: micro-batches from `epoch(generator)`, grad_accum per optimizer step."""
    _use_all_cores()
    kernels.install(model)
    device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("training: the model has no trainable parameters")
    total_micro = math.ceil(cfg.epochs * n_batches)
    steps = (
        cfg.max_steps
        if cfg.max_steps is not None
        else max(1, math.ceil(total_micro / cfg.grad_accum))
    )
    eval_every = cfg.eval_every or max(1, math.ceil(n_batches / cfg.grad_accum))  # once per epoch
    optimizer = _optimizer(params, cfg, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(steps, int(cfg.warmup_ratio * steps))
    )
    gen = torch.Generator().manual_seed(seed)

    def micro_batches() -> Iterator[_Batch]:
        while True:  # epochs repeat, each in a fresh seeded order, until the steps are done
            yield from epoch(gen)

    stream = micro_batches()
    result = TrainResult(losses=[], steps=0, tokens=0, seconds=0.0)
    stopping = EarlyStopping(cfg, params) if cfg.early_stopping_patience is not None else None
    started = time.perf_counter()
    bar = textio.progress(steps, desc, "step", show=progress)
    first = next(stream)
    check_head(model, base_model(model).get_output_embeddings(), first.inputs)
    stream = itertools.chain([first], stream)
    try:
        with (
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
            detached_head(model) as head,
        ):
            # Inside: model(...).logits are the final hidden states (B, T, d), never logits.
            forward = torch.compile(model) if cfg.compile else model
            torch.manual_seed(seed)  # dropout (e.g. LoRA's) is part of the seeded run
            model.train()
            for step in range(1, steps + 1):
                group = [next(stream) for _ in range(cfg.grad_accum)]
                # Normalise by the (weighted) loss-bearing tokens of the whole step, so
                # accumulation over micro-batches of different sizes equals one big batch.
                norm = sum(float(_token_weights(b).sum()) for b in group)
                step_loss = torch.zeros((), device=device)
                for whole in group:
                    result.tokens += whole.tokens
                    result.target_tokens += int((whole.labels != IGNORE).sum())
                    result.row_tokens.extend(whole.rows)
                    b = _local_rows(whole)  # under torchrun: this process's rows only
                    if not b.rows:
                        continue
                    mask = b.labels != IGNORE  # (B, T)
                    with _autocast(device, cfg.precision):
                        hidden = forward(**{k: v.to(device) for k, v in b.inputs.items()}).logits
                        w = None if b.weights is None else _token_weights(b)[mask].to(device)
                        loss = head_loss(
                            hidden[mask.to(device)], b.labels[mask].to(device), head, w
                        ) / max(norm, 1e-12)
                    loss.backward()
                    step_loss += loss.detach()
                # Each process's loss is its rows' share of the step's normalised loss, so the
                # sum over processes is the single-process gradient of the whole step.
                distributed.all_reduce_gradients(params)
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm, foreach=True)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                result.losses.append(distributed.all_reduce_sum(float(step_loss)))
                bar.set_postfix(loss=f"{result.losses[-1]:.3f}", refresh=False)
                bar.update(1)
                if validator is not None and (step % eval_every == 0 or step == steps):
                    value = distributed.from_rank0(lambda: validate(model, validator, head, device))
                    result.validation.append((step, value))
                    if stopping is not None and stopping.should_stop(step, value, validator):
                        result.stopped_early = step < steps
                        break
            if stopping is not None:
                result.best_step = stopping.restore_best()
    finally:
        bar.close()
        model.eval()
    result.steps = len(result.losses)
    result.seconds = time.perf_counter() - started
    return result


def _local_rows(b: _Batch) -> _Batch:
    """This process's rows of a micro-batch: all of them outside a multi-process job."""
    if not distributed.active():
        return b
    rows = distributed.shard(len(b.rows))
    return _Batch(
        {k: v[rows] for k, v in b.inputs.items()},
        b.labels[rows],
        b.rows[rows],
        None if b.weights is None else b.weights[rows],
    )


def _token_weights(b: _Batch) -> torch.Tensor:
    """(B, T) weight of every label position: its row's example weight where it carries a loss."""
    carries = (b.labels != IGNORE).float()
    return carries if b.weights is None else carries * b.weights[:, None]


def _validation_loss(model: Any, head: torch.nn.Module, batches: list[_Batch]) -> float:
    """Mean token loss (unweighted) over held-out batches; the model runs without its head."""
    device = next(model.parameters()).device
    total, n = 0.0, 0
    for b in batches:
        mask = b.labels != IGNORE
        hidden = model(**{k: v.to(device) for k, v in b.inputs.items()}).logits  # (B, T, d)
        total += float(head_loss(hidden[mask.to(device)], b.labels[mask].to(device), head))
        n += int(mask.sum())
    return total / n
