"""fp32 linear layers through oneDNN: the same values and gradients as F.linear, routed only
where they apply."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from collapselab.models import kernels

needs_onednn = pytest.mark.skipif(kernels._op() is None, reason="this PyTorch has no oneDNN linear op")


def _pair(shape, bias: bool, frozen: bool):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, 256, generator=g, requires_grad=True)
    w = torch.randn(300, 256, generator=g, requires_grad=not frozen)  # over MIN_WEIGHTS
    b = torch.randn(300, generator=g, requires_grad=True) if bias else None
    return x, w, b


@needs_onednn
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("frozen", [True, False])
def test_values_and_gradients_equal_f_linear(shape, bias, frozen):
    grads = []
    for fn in (kernels.linear, F.linear):
        x, w, b = _pair(shape, bias, frozen)
        y = fn(x, w, b)
        (y * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
        grads.append((y.detach(), x.grad, w.grad, None if b is None else b.grad))
    (y1, dx1, dw1, db1), (y2, dx2, dw2, db2) = grads
    assert y1.shape == y2.shape == (*shape, 300)
    torch.testing.assert_close(y1, y2, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(dx1, dx2, atol=1e-4, rtol=1e-5)
    assert (dw1 is None) == frozen == (dw2 is None)
    if not frozen:
        torch.testing.assert_close(dw1, dw2, atol=1e-4, rtol=1e-5)
    if bias:
        torch.testing.assert_close(db1, db2, atol=1e-4, rtol=1e-5)


@needs_onednn
def test_routes_plain_linear_layers_only_and_only_fp32_cpu(monkeypatch):
    calls = []
    op = kernels._op()

    def counted(x, *rest):
        calls.append(tuple(x.shape))
        return op(x, *rest)

    monkeypatch.setattr(kernels, "_op", lambda: counted)

    class Wrapped(torch.nn.Linear):  # a subclass (quantized or adapter layer) keeps its forward
        pass

    # a big plain layer, a subclass (quantized or adapter layers keep their forward), a small plain layer
    model = kernels.install(torch.nn.Sequential(torch.nn.Linear(256, 300), Wrapped(300, 300), torch.nn.Linear(300, 8)))
    assert [type(m) for m in model] == [kernels.Linear, Wrapped, kernels.Linear]
    x = torch.randn(3, 256)
    model(x)
    assert calls == [(3, 256)]  # only the big plain layer went through oneDNN
    model.double()(x.double())  # fp64: F.linear
    monkeypatch.setenv(kernels.ENV, "torch")
    model.float()(x)  # turned off
    assert calls == [(3, 256)]
    monkeypatch.delenv(kernels.ENV)
    out = model(x)
    assert len(calls) == 2
    torch.testing.assert_close(out, model[2](model[1](F.linear(x, model[0].weight, model[0].bias))), atol=1e-4, rtol=1e-5)
    with torch.inference_mode():  # generation: the op itself, no autograd Function around it
        again = model(x[None])
    assert calls[-1] == (3, 256) and again.shape == (1, 3, 8)
    torch.testing.assert_close(again[0], out)


@needs_onednn
def test_a_routed_model_pickles_and_copies_as_it_was():
    # torchrun's ranks receive the model pickled; a routed layer must travel and stay routed.
    import copy
    import pickle

    model = kernels.install(torch.nn.Sequential(torch.nn.Linear(256, 300)))
    x = torch.randn(2, 256)
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert type(clone[0]) is kernels.Linear and isinstance(clone[0], torch.nn.Linear)
        torch.testing.assert_close(clone(x), model(x))
