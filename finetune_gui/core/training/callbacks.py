"""Small pieces of loop policy: which epoch is best, when to stop early, when the loss diverged."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from finetune_gui.core.errors import ConfigError, Diverged


@dataclass
class BestTracker:
    """Remembers the best value of one metric; `patience` counts epochs since the last improvement."""

    metric: str
    mode: str  # "min" | "max"
    min_delta: float = 0.0
    best_value: float | None = None
    best_epoch: int = -1
    epochs_since_best: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's value; True when it is a new best."""
        if self.best_value is None:
            improved = True
        elif self.mode == "min":
            improved = value < self.best_value - self.min_delta
        else:
            improved = value > self.best_value + self.min_delta
        if improved:
            self.best_value, self.best_epoch, self.epochs_since_best = value, epoch, 0
        else:
            self.epochs_since_best += 1
        return improved

    def state_dict(self) -> dict:
        return {
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "epochs_since_best": self.epochs_since_best,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_value = state["best_value"]
        self.best_epoch = int(state["best_epoch"])
        self.epochs_since_best = int(state["epochs_since_best"])


def check_finite(loss: float, step: int, lr: float) -> None:
    """Raise Diverged when the loss is NaN or infinite."""
    if not math.isfinite(loss):
        raise Diverged(
            f"the loss became {loss} at step {step} (learning rate {lr:.3g}); training was stopped and the last "
            "finite checkpoint kept. Try a learning rate 3-10x lower, gradient clipping (train.grad_clip = 1.0), "
            "or fp32 precision."
        )


def check_finite_weights(weights: dict[str, torch.Tensor], step: int, lr: float) -> None:
    """Raise Diverged when any weight is NaN or infinite (a finite loss can hide that for a step)."""
    floats = [t for t in weights.values() if t.is_floating_point()]
    if not floats or math.isfinite(float(torch.nn.utils.get_total_norm(floats))):  # one fused pass over all weights
        return
    bad = [k for k, t in weights.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise Diverged(
            f"the weights became NaN or infinite by step {step} (learning rate {lr:.3g}; {bad[0]}"
            f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); training was stopped and the last finite "
            "checkpoint kept. Try a learning rate 3-10x lower, gradient clipping (train.grad_clip = 1.0), or fp32 "
            "precision."
        )


def check_monitored(monitor: str, metrics: dict[str, float], evaluated: bool, step: int, lr: float) -> None:
    """The metric that picks the best epoch must be logged: when the validation loss is missing because no
    validation batch gave a finite loss, the run diverged (Diverged); any other missing metric is a config error."""
    if monitor in metrics:
        return
    if evaluated and monitor.startswith("val_") and "val_loss" not in metrics:
        raise Diverged(
            f"the validation loss was not finite for any batch at step {step} (learning rate {lr:.3g}): the model "
            "diverged; training was stopped and the last finite checkpoint kept. Try a learning rate 3-10x lower, "
            "gradient clipping (train.grad_clip = 1.0), or fp32 precision."
        )
    raise ConfigError(
        [
            f"early_stopping.metric: '{monitor}' is not logged for this task; logged metrics: {', '.join(sorted(metrics))}"
        ]
    )
