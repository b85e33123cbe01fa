"""Next-token cross-entropy from final hidden states, the LM head applied a chunk of rows at a time.

Why: with SmolLM2's 49k-token vocabulary, the fp32 logits of one 8k-token micro-batch are
1.6 GB, and `F.cross_entropy` keeps its log-softmax and then the logits' gradient beside them:
a batch of 8 SQuAD examples was killed by the OOM killer at 24 GB. Here the model runs with
its head detached (`detached_head`: its forward returns the final hidden states, never
logits), only the rows that carry a target are kept, and `head_loss` applies the head to
`chunk_rows` of them at a time. Each chunk's loss *and gradients* are computed at once in the
forward pass (the chunk's logits are freed before the next chunk), and backward only scales
the stored gradients by the upstream gradient: memory is one chunk's logits, never the
batch's, and the FLOPs are exactly those of the plain loss (no recomputation).

Rows without a target (prompt tokens, padding) never reach the head at all: supervised QA
training, where a 200-token prompt carries a 5-token answer, skips the head's matmul for the
prompt rows instead of computing and then ignoring their logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import torch
import torch.nn.functional as F

# Rows per chunk = this many logits / vocabulary size: 32M fp32 logits (128 MB) per chunk, so
# a chunk is >= 650 rows for a 49k vocabulary (a matmul big enough to run near peak) and a
# small vocabulary's whole batch is one chunk.
CHUNK_LOGITS = 1 << 25


def base_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (or the model itself)."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


@contextmanager
def output_layer(model: Any, module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Make `module` the model's output layer while the block runs; yield the one it replaced.

    With `torch.nn.Identity()` (see `detached_head`) `model(...).logits` are the final hidden
    states (B, T, d), after whatever the model does between its last layer and its head (e.g.
    T5's d_model**-0.5 rescaling), and no logits are computed. A peft LoRA wrapper keeps
    working: it calls the same transformers model, and a LoRA-wrapped head is the module
    yielded. Models that transform logits *after* the head (logit soft-capping, a final bias)
    are refused by `check_head`.
    """
    base = base_model(model)
    replaced = base.get_output_embeddings()
    if replaced is None:
        raise ValueError(f"training: {type(base).__name__} has no output embeddings (LM head)")
    base.set_output_embeddings(module)
    try:
        yield replaced
    finally:
        base.set_output_embeddings(replaced)


def detached_head(model: Any) -> AbstractContextManager[torch.nn.Module]:
    """The model without its LM head inside the block (it returns hidden states); yields the head."""
    return output_layer(model, torch.nn.Identity())


def check_head(model: Any, head: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    """Fail loudly unless head(hidden states) equals the model's own logits on a short slice.

    Call outside `detached_head`; it runs the model twice on one row of at most 16 tokens.
    """
    sample = {k: v[:1, :16] for k, v in inputs.items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reference = model(**sample).logits
            with detached_head(model):
                ours = head(model(**sample).logits)
    finally:
        model.train(was_training)
    if not torch.allclose(ours, reference, rtol=1e-4, atol=1e-4):
        raise ValueError(
            f"training: {type(base_model(model)).__name__}'s logits are not its head applied to "
            "its final hidden states (it transforms logits after the head, e.g. soft-capping); "
            "the chunked loss does not support it"
        )


def head_loss(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    head: torch.nn.Module,
    weights: torch.Tensor | None = None,
    chunk_rows: int | None = None,
) -> torch.Tensor:
    """Sum over rows of weight * cross_entropy(head(hidden[i]), targets[i]), chunk by chunk.

    Args:
        hidden: (N, d) final hidden states of the rows that carry a target.
        targets: (N,) token ids.
        head: The output layer (a `torch.nn.Linear`, or any module such as a LoRA-wrapped one).
        weights: (N,) per-row loss weights, constants (never differentiated); None = all 1.
        chunk_rows: Rows per chunk; default `CHUNK_LOGITS // vocabulary size`.

    Returns:
        A scalar fp32 tensor; differentiable w.r.t. `hidden` and the head's trainable
        parameters, with the same values and gradients as the unchunked loss.
    """
    if chunk_rows is None:
        vocab = head(hidden[:0]).shape[-1]  # the head of no rows: its output width, no FLOPs
        chunk_rows = max(1, CHUNK_LOGITS // vocab)
    params = list(head.parameters())
    return _ChunkedHeadLoss.apply(hidden, targets, weights, head, chunk_rows, *params)


class _ChunkedHeadLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden, targets, weights, head, chunk_rows, *params):  # noqa: ANN001
        need_hidden = ctx.needs_input_grad[0]
        trainable = [i for i, p in enumerate(params) if ctx.needs_input_grad[5 + i]]
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        grad_params = [torch.zeros_like(params[i]) for i in trainable]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_rows):
            rows = slice(start, start + chunk_rows)
            with torch.enable_grad():
                h = hidden[rows].detach().requires_grad_(need_hidden)  # (C, d)
                logits = head(h).float()  # (C, V): the only logits alive at any time
                loss = F.cross_entropy(logits, targets[rows], reduction="none")  # (C,)
                loss = (loss * weights[rows]).sum() if weights is not None else loss.sum()
            wrt = ([h] if need_hidden else []) + [params[i] for i in trainable]
            if wrt:
                grads = list(torch.autograd.grad(loss, wrt))
                if need_hidden:
                    grad_hidden[rows] = grads.pop(0)
                for acc, g in zip(grad_params, grads, strict=True):
                    acc += g
            total += loss.detach()
        ctx.grad_hidden, ctx.grad_params, ctx.trainable = grad_hidden, grad_params, trainable
        ctx.n_params = len(params)
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor):  # noqa: ANN205
        # The loss is a scalar, so every gradient is the stored one times d(out)/d(loss);
        # scaled in place (the graph is never backpropagated twice: no retain_graph).
        grad_hidden = ctx.grad_hidden.mul_(grad_total) if ctx.grad_hidden is not None else None
        grad_params: list[torch.Tensor | None] = [None] * ctx.n_params
        for i, g in zip(ctx.trainable, ctx.grad_params, strict=True):
            grad_params[i] = g.mul_(grad_total)
        ctx.grad_hidden = ctx.grad_params = None
        return (grad_hidden, None, None, None, None, *grad_params)
