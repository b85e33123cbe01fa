"""What the engine tells the world while it runs, one event per step of the loop.

The engine calls every listener with each event, in order, in its own thread. A listener
is any callable taking one event: the CLI's console table, the Python API's progress, a
tracker (MLflow, W&B), the hub pusher, a notifier. A listener that talks to the network
catches its own failures and reports what it could not send: it must never fail or block
the run. An exception that escapes a listener is a bug and stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_dir: Path
    run_id: str
    experiment: str
    config: Any  # the resolved ExperimentConfig
    resumed: bool  # True when the run directory already held finished steps

    def parameters(self) -> str:
        """The run's key parameters in one line, for the start message (the console's, a
        notification's): what a reader needs to tell this run from another at a glance."""
        cfg = self.config
        e, d, m, t, dec = cfg.experiment, cfg.data, cfg.model, cfg.training, cfg.decoding
        sizes = ", ".join(f"{k} {v}" for k, v in (("train", d.train_size), ("test", d.test_size)) if v is not None)
        arms = "; ".join(f"{a.name} ({a.init}, {a.mix}{'' if a.ratio is None else f' {a.ratio:g}'}"
                         f"{'' if a.data == 'human' else f', {a.data} data'})" for a in cfg.arms)
        steps = f"{t.max_steps} steps" if t.max_steps is not None else f"{t.epochs:g} epoch{'s' * (t.epochs != 1)}"
        decoding = dec.method if dec.method != "sample" else f"sample T={dec.temperature:g} top_p={dec.top_p:g}"
        return (f"task {e.task}, model {m.name}{' + LoRA' if m.lora else ''}, data {d.dataset}" + (f" ({sizes})" if sizes else "")
                + f", {e.generations} generations, seeds {', '.join(map(str, e.seeds))}, arms {arms}, "
                f"training {steps} lr {t.lr:g}, decoding {decoding}")


@dataclass(frozen=True, slots=True)
class GenerationStarted:
    run_dir: Path
    arm: str
    seed: int
    generation: int


@dataclass(frozen=True, slots=True)
class GenerationFinished:
    run_dir: Path
    arm: str
    seed: int
    generation: int
    folder: Path  # <run>/<arm>/seed-<s>/gen-<g>, DONE written
    metrics: dict[str, float] = field(default_factory=dict)  # metric name -> value
    copied_from: Path | None = None  # generation 0 shared with another arm


@dataclass(frozen=True, slots=True)
class GenerationFailed:
    run_dir: Path
    arm: str
    seed: int
    generation: int
    error: str  # one line: the exception's type and message


@dataclass(frozen=True, slots=True)
class RunFinished:
    run_dir: Path
    run_id: str


@dataclass(frozen=True, slots=True)
class Message:
    text: str  # a progress line for people (the run directory, what was restarted)


Event = RunStarted | GenerationStarted | GenerationFinished | GenerationFailed | RunFinished | Message
Listener = Callable[[Event], None]


def emit(listeners: Sequence[Listener], event: Event) -> None:
    """Send `event` to every listener in order."""
    for listener in listeners:
        listener(event)
