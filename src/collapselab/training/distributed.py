"""Data-parallel training across processes started by `torchrun` (or `accelerate launch`).

Only the training step is spread over the processes; everything else (data, generation,
evaluation, every file and database row) happens once, on rank 0:

- rank 0 runs the engine as usual. Each call of a `@data_parallel` training function (the
  entry points of training/loop.py) first sends the call (the function, the model, the data, the
  recipe, the seed) to the other ranks;
- every other rank waits in `serve()` for such calls, makes the same call on its copy, and
  goes back to waiting; it never writes a file;
- inside the training loop each rank takes its share of every micro-batch's rows
  (`shard`), and the gradients are summed over the ranks (`all_reduce_gradients`) before
  clipping and the optimizer step. Every rank draws the same data order from the same seed,
  and the loss is normalised by the whole optimizer step's tokens, so the summed gradient
  is the single-process gradient of the same global batch (up to the order of float
  additions), and every rank's optimizer takes the same step.

Backends: gloo on CPU, NCCL on GPUs (rank r uses cuda:<LOCAL_RANK>). Dropout draws its masks
per rank, so a model with dropout trains like a single process in distribution, not
bitwise.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

_STOP = "stop"
_RANK0_SCORE = "score computed on rank 0"


def world_size() -> int:
    """Processes in this job (1 without torchrun / accelerate)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def active() -> bool:
    """True inside a multi-process job whose process group is up."""
    import torch.distributed as dist

    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def start() -> bool:
    """Join the job's process group when started by torchrun / accelerate (a no-op otherwise).

    Returns:
        True on a rank other than 0: the caller should `serve()` instead of running the engine.
    """
    if world_size() == 1:
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return rank() != 0


def data_parallel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Make a training entry point run on every rank: rank 0's call is sent to the others first
    (as the function's module and name, and its arguments, pickled)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if active() and rank() == 0:
            import torch.distributed as dist

            print(f"{fn.__name__}: data-parallel over {world_size()} processes ({dist.get_backend()})", file=sys.stderr, flush=True)
            # A score callback (a closure over the lab) stays on rank 0, which validates and
            # sends the value (`from_rank0`); the others only learn that there is one.
            sent = {**kwargs, "score": _RANK0_SCORE} if kwargs.get("score") is not None else kwargs
            _broadcast((fn.__module__, fn.__name__, args, sent))
        return fn(*args, **kwargs)

    return call


def serve() -> None:
    """On a rank other than 0: make every training call rank 0 sends, until it says stop."""

    while (message := _broadcast(None)) != _STOP:
        module, name, args, kwargs = message
        fn = getattr(importlib.import_module(module), name).__wrapped__  # not broadcast again
        kwargs = {**kwargs, "progress": False} if "progress" in kwargs else kwargs  # rank 0 shows the bar
        if kwargs.get("score") == _RANK0_SCORE:
            kwargs["score"] = _never_called
        fn(*_to_local_device(args), **_to_local_device(kwargs))
    finish()


def stop() -> None:
    """On rank 0, when the engine is done: let the other ranks go, and leave the group."""
    if active() and rank() == 0:
        _broadcast(_STOP)
        finish()


def finish() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard(batch_rows: int) -> slice:
    """This rank's rows of a micro-batch of `batch_rows` rows: every world_size-th from rank.
    A rank may get none (a micro-batch with fewer rows than ranks); it still joins the sum."""
    return slice(rank(), batch_rows, world_size()) if active() else slice(0, batch_rows)


def all_reduce_gradients(params: list[Any]) -> None:
    """Sum every parameter's gradient over the ranks (a rank without rows adds zeros)."""
    if not active():
        return
    import torch
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])  # one collective, not one per tensor
    dist.all_reduce(flat)
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[:n].view_as(g).clone() if p.grad is None else p.grad.copy_(flat[:n].view_as(g))
        flat = flat[n:]


def all_reduce_sum(value: float) -> float:
    """Sum a number over the ranks (a step's loss, its tokens)."""
    if not active():
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=_device())
    dist.all_reduce(t)
    return float(t.item())


def from_rank0(value: Callable[[], float]) -> float:
    """`value()` computed on rank 0 only (a validation: generation, metrics) and sent to every
    rank, so all of them take the same early-stopping decision."""
    if not active():
        return value()
    return _broadcast(value() if rank() == 0 else None)


def _never_called(model: Any) -> float:
    raise RuntimeError("a score callback runs on rank 0 only (distributed.from_rank0)")


def _broadcast(obj: Any) -> Any:
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_device())
    return box[0]


def _device():
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def _to_local_device(obj: Any) -> Any:
    """Rank 0's model arrives on rank 0's device; on a GPU rank it moves to its own."""
    import torch

    if not torch.cuda.is_available():
        return obj
    if isinstance(obj, torch.nn.Module):
        return obj.to(_device())
    if isinstance(obj, tuple | list):
        return type(obj)(_to_local_device(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_local_device(v) for k, v in obj.items()}
    return obj
