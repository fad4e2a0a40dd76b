"""The loop's hook points: where diagnostics, a feature cache or distributed training plug in.

A hook subclasses `TrainingHook` and overrides the events it needs; the others do nothing. The loop calls
them in this order for every optimiser step: `before_backward` and `after_backward` once per batch (several
times per step with gradient accumulation), then `before_step` and `on_step_end`; `on_epoch_end` after each
epoch's evaluation, `on_run_end` once a run has ended (not when it failed), and `close` last, however the run
ended, for what a hook holds open (files, writers).
Hooks receive the trainer, so they can read the model, the optimiser and the loop's state; they must not
change the loop's counters. A hook that wants the run to end calls `trainer.control.stop()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class StepEnd:
    """One optimiser step, done. `logged` marks the steps whose metrics are logged: the place for costly probes."""

    epoch: int
    step: int
    loss: float
    lr: float
    grad_norm: float  # NaN when not measured this step
    logged: bool


class TrainingHook:
    """Base of the loop's hooks. Every method does nothing."""

    def before_backward(self, trainer: Any, loss: torch.Tensor) -> None:
        """A batch's loss is computed; its gradients are not."""

    def after_backward(self, trainer: Any, loss: torch.Tensor) -> None:
        """A batch's gradients are accumulated into .grad; the optimiser has not stepped yet."""

    def before_step(self, trainer: Any, logged: bool) -> None:
        """A step's gradients are complete; the optimiser is about to step. `logged` as in StepEnd."""

    def on_step_end(self, trainer: Any, step: StepEnd) -> None:
        """The optimiser and the schedule have stepped; gradients are cleared."""

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        """An epoch is trained and evaluated (0-based `epoch`); `metrics` holds train_loss and the val_ values."""

    def on_run_end(self, trainer: Any, status: str) -> None:
        """The run ended: completed, early-stopped or stopped (its final files are written)."""

    def close(self, trainer: Any) -> None:
        """The run is over, whatever happened, failures included: release files and writers."""


class Hooks:
    """Calls each hook in turn for every event."""

    def __init__(self, hooks: tuple[TrainingHook, ...] | list[TrainingHook] = ()):
        self.hooks = tuple(hooks)

    def before_backward(self, trainer: Any, loss: torch.Tensor) -> None:
        for h in self.hooks:
            h.before_backward(trainer, loss)

    def after_backward(self, trainer: Any, loss: torch.Tensor) -> None:
        for h in self.hooks:
            h.after_backward(trainer, loss)

    def before_step(self, trainer: Any, logged: bool) -> None:
        for h in self.hooks:
            h.before_step(trainer, logged)

    def on_step_end(self, trainer: Any, step: StepEnd) -> None:
        for h in self.hooks:
            h.on_step_end(trainer, step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        for h in self.hooks:
            h.on_epoch_end(trainer, epoch, metrics)

    def on_run_end(self, trainer: Any, status: str) -> None:
        for h in self.hooks:
            h.on_run_end(trainer, status)

    def close(self, trainer: Any) -> None:
        for h in self.hooks:
            h.close(trainer)
