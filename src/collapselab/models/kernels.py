"""fp32 linear layers on a CPU through oneDNN instead of the BLAS `F.linear` calls.

On the 2-core AMD EPYC of RESULTS.md, MKL (PyTorch's BLAS) runs the skinny matmuls of a
small LM at 50-130 GFLOP/s where oneDNN (also inside every x86 PyTorch build) runs them at
150-200: the lm head of SmolLM2 at batch 64 takes 91 ms through MKL and 35 ms through
oneDNN. `install` points the fp32 `nn.Linear` layers of a model (those of at least
`MIN_WEIGHTS` weights) at oneDNN for the forward pass and the input gradient; the weight
gradient stays on `torch.mm`, which is the faster of the two for that shape. Numbers differ
from `F.linear` by float rounding only.

The choice is made per call: a tensor on another device or dtype takes `F.linear`, so a
model moved to a GPU after loading is unaffected. `COLLAPSELAB_LINEAR=torch` turns it off
(the benchmarks' A/B), as does a PyTorch without the oneDNN op.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch
import torch.nn.functional as F

ENV = "COLLAPSELAB_LINEAR"
# Smaller layers stay on F.linear: on the 1M-parameter quickstart model (128 x 344 layers)
# oneDNN was no faster. SmolLM2's smallest, 576 x 192, is 110k weights.
MIN_WEIGHTS = 1 << 16


@functools.cache
def _op() -> Any | None:
    """The oneDNN linear op, if this PyTorch has one that agrees with `F.linear`."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return None
    try:
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*s, generator=g) for s in ((5, 24), (7, 24), (7,)))
        ok = torch.allclose(op(x, w, b, "none", [], ""), F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    except RuntimeError:
        return None
    return op if ok else None


def enabled() -> bool:
    return os.environ.get(ENV, "onednn") != "torch" and _op() is not None


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x as a contiguous (rows, features) matrix."""
    return x.reshape(-1, x.shape[-1]).contiguous()


def _dnn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T + bias through oneDNN, for x of any leading shape."""
    return _op()(_rows(x), weight, bias, "none", [], "").view(*x.shape[:-1], weight.shape[0])


class _OneDnnLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(_rows(x) if weight.requires_grad else None, weight)
        ctx.has_bias = bias is not None
        return _dnn(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x2, weight = ctx.saved_tensors
        g2 = _rows(grad)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = _dnn(grad, weight.t(), None)
        if ctx.needs_input_grad[1]:
            dw = torch.mm(g2.t(), x2)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = g2.sum(0)
        return dx, dw, db


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear`, through oneDNN for fp32 tensors on a CPU."""
    if (
        x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and x.shape[-1] == weight.shape[-1]
        and weight.numel() >= MIN_WEIGHTS
        and x.numel()
        and not torch.is_autocast_enabled("cpu")  # autocast picks its own dtype: leave it to F.linear
        and enabled()
    ):
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)):
            return _OneDnnLinear.apply(x, weight, bias)
        return _dnn(x, weight, bias)  # no graph: no Function overhead
    return F.linear(x, weight, bias)


class Linear(torch.nn.Linear):
    """An `nn.Linear` whose forward is `linear` (what `install` turns plain layers into; it
    pickles and copies like the layer it was)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight, self.bias)


def install(model: Any) -> Any:
    """Route the plain `nn.Linear` layers of `model` through `linear`; returns `model`.

    Subclasses (quantized or adapter layers) keep their own forward; an adapter's base layer
    is a plain `nn.Linear` and is routed. Idempotent.
    """
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.__class__ = Linear
    return model
