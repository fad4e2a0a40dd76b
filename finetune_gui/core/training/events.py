"""What the training loop reports, and the thread-safe handle that steers it.

Events carry plain floats and strings, never tensors, so any thread may keep them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    task: str
    device: str
    precision: str
    epochs: int
    steps_per_epoch: int
    total_steps: int
    num_train: int
    num_val: int
    num_test: int
    labels: tuple[str, ...]
    trainable_params: int
    total_params: int
    resumed_from_step: int = 0


@dataclass(frozen=True)
class LogMessage:
    level: str  # "info" | "warning"
    text: str


@dataclass(frozen=True)
class StepMetrics:
    epoch: int
    step: int  # optimiser steps done so far, over the whole run
    total_steps: int
    loss: float
    lr: float
    grad_norm: float
    samples_per_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    step: int
    metrics: dict[str, float]
    lr: float
    elapsed_s: float


@dataclass(frozen=True)
class CheckpointSaved:
    path: str
    epoch: int
    step: int
    is_best: bool


@dataclass(frozen=True)
class EarlyStopped:
    epoch: int
    metric: str
    best_value: float
    best_epoch: int


@dataclass(frozen=True)
class RunFinished:
    run_dir: str
    status: str  # "completed" | "stopped" | "early-stopped"
    best_epoch: int
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]


@dataclass(frozen=True)
class RunFailed:
    run_dir: str
    error_type: str
    message: str
    details: str = ""


@dataclass(frozen=True)
class Diagnosis:
    """Every finding so far (core.diagnostics Finding.to_dict), sent when one is new or has grown worse."""

    findings: tuple[dict, ...]


@dataclass(frozen=True)
class Probed:
    """The probes of a logged step: RMS gradient per trainable block (input side first; NaN = none) and the
    share of dead units per ReLU layer."""

    step: int
    blocks: tuple[str, ...]
    block_grad: tuple[float, ...]
    dead: dict[str, float]


Event = (
    Diagnosis
    | Probed
    | RunStarted
    | LogMessage
    | StepMetrics
    | EpochMetrics
    | CheckpointSaved
    | EarlyStopped
    | RunFinished
    | RunFailed
)


class Listener(Protocol):
    def __call__(self, event: Event) -> None: ...


@dataclass
class EventLog:
    """A listener that keeps every event (tests, scripts)."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


class StopRequested(Exception):
    """Raised inside the loop when the user asked to stop; the loop saves and returns."""


class RunControl:
    """Stop / pause / resume a run from another thread. Checked between optimiser steps."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused run must wake up to stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self, on_pause: Callable[[], None] | None = None) -> None:
        """Block while paused; raise StopRequested if a stop was asked for."""
        if not self._running.is_set():
            if on_pause is not None:
                on_pause()
            self._running.wait()
        if self._stop.is_set():
            raise StopRequested()
