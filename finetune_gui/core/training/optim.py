"""Optimisers, learning-rate schedules and the LR finder.

A schedule is a pure function of the optimiser step (`lr_multiplier`), so the GUI can plot it before
training (`planned_lrs`) and a resumed run continues from a step count alone. `Schedule` applies it to an
optimiser and adds the one data-driven rule (plateau), keeping its whole state as plain numbers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from finetune_gui.config import ConfigError, TrainConfig

__all__ = [
    "LRFinderResult",
    "Schedule",
    "SweepProgress",
    "build_optimizer",
    "build_scheduler",
    "lr_multiplier",
    "load_optimizer_state",
    "lr_sweep",
    "optimizer_kernel",
    "planned_lrs",
    "suggest_from_curve",
    "warmup_steps",
]

ONE_CYCLE_DIV = 25.0
ONE_CYCLE_FINAL_DIV = 1e4
PLATEAU_THRESHOLD = 1e-4  # relative improvement that counts (as torch's ReduceLROnPlateau)


# ---------------------------------------------------------------- optimisers


FUSED_OPTIMIZERS = ("sgd", "adam", "adamw")  # torch has fused CUDA kernels for these; RMSprop has none


def optimizer_kernel(optimizer: str, device_type: str) -> str:
    """How the optimiser updates its tensors on `device_type`: "fused" (one kernel for all of them),
    "foreach" (a few batched kernels) or "default" (torch's own choice, a loop per tensor on the CPU).

    The CPU keeps torch's default, so CPU runs stay as they were (its foreach kernels are no faster there).
    """
    if device_type != "cuda":
        return "default"
    return "fused" if optimizer in FUSED_OPTIMIZERS else "foreach"


def _kernel_args(optimizer: str, groups: list[dict]) -> dict[str, bool]:
    params = [q for g in groups for q in g["params"]]
    kinds = {q.device.type for q in params}
    if len(kinds) != 1 or not all(q.is_floating_point() for q in params):
        return {}
    kernel = optimizer_kernel(optimizer, kinds.pop())
    return {} if kernel == "default" else {kernel: True}


def build_optimizer(train: TrainConfig, param_groups: list[dict]) -> torch.optim.Optimizer:
    """The optimiser named by `train.optimizer` over `param_groups`, fused or foreach where its weights'
    device has those kernels (`optimizer_kernel`).

    Each group carries its own `params`, `lr`, `weight_decay` and `name`; they are kept as given, in order.
    """
    groups = [dict(g) for g in param_groups]
    for g in groups:
        g["params"] = list(g["params"])
    if not any(g["params"] for g in groups):
        raise ConfigError(["model.freeze: no trainable weights are left; freeze fewer layers"])
    # empty groups are kept, so optimizer.param_groups lines up with `param_groups`
    name = train.optimizer
    kernel = _kernel_args(name, groups)
    if name == "sgd":
        if train.nesterov and train.momentum <= 0:
            raise ConfigError(["train.nesterov: needs train.momentum > 0"])
        return torch.optim.SGD(groups, lr=train.lr, momentum=train.momentum, nesterov=train.nesterov, **kernel)
    if name == "adam":
        return torch.optim.Adam(groups, lr=train.lr, **kernel)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=train.lr, **kernel)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=train.lr, momentum=train.momentum, **kernel)
    raise ConfigError([f"train.optimizer: unknown optimizer {name!r}; use sgd, adam, adamw or rmsprop"])


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a checkpoint's optimiser state but keep this optimiser's kernel choice (fused/foreach), so a run
    saved on a GPU resumes on a machine without one."""
    kernels = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in optimizer.param_groups]
    # set before loading: torch places each tensor of the state (`step`) by the loaded group's flags
    groups = [dict(g, **kept) for g, kept in zip(state["param_groups"], kernels)]
    optimizer.load_state_dict({**state, "param_groups": groups})


# ---------------------------------------------------------------- schedules


def warmup_steps(train: TrainConfig, total_steps: int) -> int:
    """Optimiser steps spent warming up (warmup schedules; one-cycle's rising phase)."""
    total = max(1, int(total_steps))
    if train.schedule == "one-cycle":
        frac = train.warmup_fraction if train.warmup_fraction > 0 else 0.25
        return min(total - 1, max(1, round(frac * total))) if total > 1 else 0
    if train.schedule in ("linear-warmup", "cosine-warmup"):
        return min(total - 1, round(train.warmup_fraction * total)) if total > 1 else 0
    return 0


def _cos_interp(start: float, end: float, p: float) -> float:
    """Cosine from `start` (p=0) to `end` (p=1)."""
    p = min(max(p, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * p))


def lr_multiplier(train: TrainConfig, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The multiplier of the peak LR at optimiser step `s` (0-based) for `train.schedule`.

    Decaying schedules reach their floor (min_lr_ratio) at the last planned step, `total_steps - 1`, and
    stay there if training runs longer. Warmup rises linearly from 1/(W+1) and peaks at step W.
    """
    total = max(1, int(total_steps))
    spe = max(1, int(steps_per_epoch))
    if train.recipe == "lp-ft":  # the schedule once per stage; the fine-tuning stage at ft_lr_mult
        probe = min(total, int(train.lp_epochs) * spe)
        plain = train.model_copy(update={"recipe": "standard"})
        first, second = lr_multiplier(plain, probe, spe), lr_multiplier(plain, max(1, total - probe), spe)
        mult = float(train.ft_lr_mult)
        return lambda s: first(s) if s < probe else mult * second(s - probe)
    kind = train.schedule
    gamma = float(train.gamma)
    floor = float(train.min_lr_ratio)
    warm = warmup_steps(train, total)

    def decay_progress(s: int, start: int) -> float:
        span = max(1, total - 1 - start)
        return min(max((s - start) / span, 0.0), 1.0)

    if kind in ("constant", "plateau"):
        return lambda s: 1.0
    if kind == "step":
        every = max(1, int(train.step_epochs))
        return lambda s: gamma ** ((max(s, 0) // spe) // every)
    if kind == "multistep":
        marks = sorted(int(m) for m in train.milestones)
        return lambda s: gamma ** bisect.bisect_right(marks, max(s, 0) // spe)
    if kind == "exponential":
        return lambda s: gamma ** (max(s, 0) // spe)
    if kind == "cosine":
        return lambda s: _cos_interp(1.0, floor, decay_progress(s, 0))

    if kind in ("linear-warmup", "cosine-warmup"):

        def warmed(s: int) -> float:
            if s < warm:
                return (max(s, 0) + 1) / (warm + 1)
            p = decay_progress(s, warm)
            if kind == "linear-warmup":
                return 1.0 + (floor - 1.0) * p
            return _cos_interp(1.0, floor, p)

        return warmed

    if kind == "one-cycle":
        low = 1.0 / ONE_CYCLE_DIV
        final = low / ONE_CYCLE_FINAL_DIV

        def cycle(s: int) -> float:
            if s < warm:
                return _cos_interp(low, 1.0, max(s, 0) / warm)
            return _cos_interp(1.0, final, decay_progress(s, warm))

        return cycle

    raise ConfigError([f"train.schedule: unknown schedule {kind!r}"])


def planned_lrs(train: TrainConfig, total_steps: int, steps_per_epoch: int) -> list[float]:
    """Peak LR × multiplier for every planned optimiser step (plateau drops cannot be foreseen)."""
    mult = lr_multiplier(train, total_steps, steps_per_epoch)
    return [train.lr * mult(s) for s in range(max(0, int(total_steps)))]


class Schedule:
    """Applies `lr_multiplier` to an optimiser's groups, plus the plateau rule.

    Call `step()` after every optimiser step and `epoch_end(val_loss)` after each validation. The LR of a
    group is `initial_lr × multiplier(step) × plateau_factor`; a group added later (gradual unfreezing)
    takes its current `lr` as its `initial_lr`. The state is ints, floats and lists only.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, train: TrainConfig, total_steps: int, steps_per_epoch: int):
        self.optimizer = optimizer
        self.kind = train.schedule
        self.multiplier = lr_multiplier(train, total_steps, steps_per_epoch)
        self.gamma = float(train.gamma)
        self.patience = int(train.plateau_patience)
        self.min_factor = float(train.min_lr_ratio)
        self.step_count = 0
        self.plateau_factor = 1.0
        self.best = math.inf
        self.bad_epochs = 0
        self.num_drops = 0
        self._apply()

    def _base_lrs(self) -> list[float]:
        for g in self.optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        return [float(g["initial_lr"]) for g in self.optimizer.param_groups]

    def _apply(self) -> None:
        m = self.multiplier(self.step_count) * self.plateau_factor
        for g, base in zip(self.optimizer.param_groups, self._base_lrs()):
            g["lr"] = base * m

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def epoch_end(self, metric_value: float | None) -> bool:
        """Feed the epoch's validation loss; returns True when the plateau rule lowered the LR."""
        if self.kind != "plateau" or metric_value is None:
            return False
        value = float(metric_value)
        if math.isfinite(value) and (
            not math.isfinite(self.best) or value < self.best - abs(self.best) * PLATEAU_THRESHOLD
        ):
            self.best = value
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs <= self.patience:
            return False
        self.bad_epochs = 0
        new = max(self.plateau_factor * self.gamma, self.min_factor)
        if new >= self.plateau_factor:
            return False
        self.plateau_factor = new
        self.num_drops += 1
        self._apply()
        return True

    def current_lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "step_count": int(self.step_count),
            "plateau_factor": float(self.plateau_factor),
            "best": float(self.best),
            "bad_epochs": int(self.bad_epochs),
            "num_drops": int(self.num_drops),
            "base_lrs": self._base_lrs(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.plateau_factor = float(state["plateau_factor"])
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.num_drops = int(state.get("num_drops", 0))
        for g, base in zip(self.optimizer.param_groups, state.get("base_lrs", [])):
            g["initial_lr"] = float(base)
        self._apply()


def build_scheduler(
    optimizer: torch.optim.Optimizer, train: TrainConfig, total_steps: int, steps_per_epoch: int
) -> Schedule:
    """A `Schedule` for `train.schedule`; sets the LR for the first step at once."""
    return Schedule(optimizer, train, total_steps, steps_per_epoch)


# ---------------------------------------------------------------- LR finder


@dataclass
class LRFinderResult:
    lrs: list[float]
    losses: list[float]  # smoothed, bias-corrected
    raw_losses: list[float]
    suggested_lr: float | None
    reason: str


@dataclass(frozen=True)
class SweepProgress:
    """Where an LR sweep is: `phase` "preparing" (building the model and the data) or "sweeping" (after `step`
    of `num_steps`, taken at `lr`, with its raw and smoothed loss)."""

    phase: str
    num_steps: int
    step: int = 0
    lr: float = math.nan
    loss: float = math.nan
    smoothed: float = math.nan


MIN_CURVE_POINTS = 8


def suggest_from_curve(
    lrs: list[float], losses: list[float], skip_start: int | None = None, skip_end: int | None = None
) -> tuple[float | None, str]:
    """(suggested LR, reason): the LR where the loss falls fastest against log(LR).

    The first and last few points are skipped (start-up noise; divergence at the end).
    """
    n = min(len(lrs), len(losses))
    if n < MIN_CURVE_POINTS:
        return None, f"only {n} points were recorded (need {MIN_CURVE_POINTS}); run a longer sweep"
    if skip_start is None:
        skip_start = min(10, n // 10)
    if skip_end is None:
        skip_end = min(5, max(1, n // 20))
    lo, hi = skip_start, n - skip_end
    if hi - lo < 3:
        return None, f"only {n} points were recorded; too few to find a slope"
    log_lr = [math.log(lr) for lr in lrs[:n]]
    scale = max(abs(v) for v in losses[:n] if math.isfinite(v)) if any(math.isfinite(v) for v in losses[:n]) else 1.0
    best_i, best_g = None, -1e-6 * max(scale, 1e-12)  # a flat curve (rounding noise) suggests nothing
    for i in range(lo, hi):
        a, b = max(i - 1, 0), min(i + 1, n - 1)
        dx = log_lr[b] - log_lr[a]
        if dx <= 0 or not (math.isfinite(losses[a]) and math.isfinite(losses[b])):
            continue
        g = (losses[b] - losses[a]) / dx
        if g < best_g:
            best_i, best_g = i, g
    if best_i is None:
        return None, "the loss did not go down at any learning rate tried; check the data and the model"
    return float(lrs[best_i]), f"steepest descent of the smoothed loss at lr={lrs[best_i]:.3g}"


def lr_sweep(
    train_step: Callable[[float], float],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[SweepProgress], None] | None = None,
) -> LRFinderResult:
    """Exponential LR sweep: `train_step(lr)` does one step at `lr` and returns its loss.

    Stops early when the smoothed loss exceeds `diverge_factor` × its best, turns non-finite, or
    `should_stop()` says so. `progress` hears of every recorded point.
    """
    if not (0 < start_lr < end_lr):
        raise ValueError(f"lr_sweep needs 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    num_steps = max(2, int(num_steps))
    ratio = end_lr / start_lr
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    avg = 0.0
    best = math.inf
    stop_note = ""
    for i in range(num_steps):
        if should_stop is not None and should_stop():
            stop_note = "sweep stopped by request"
            break
        lr = start_lr * ratio ** (i / (num_steps - 1))
        loss = float(train_step(lr))
        if not math.isfinite(loss):
            stop_note = f"loss became {loss} at lr={lr:.3g}"
            break
        avg = smoothing * avg + (1.0 - smoothing) * loss
        smoothed = avg / (1.0 - smoothing ** (i + 1))
        lrs.append(lr)
        raw.append(loss)
        losses.append(smoothed)
        if progress is not None:
            progress(SweepProgress("sweeping", num_steps, i + 1, lr, loss, smoothed))
        if not math.isfinite(smoothed):
            stop_note = f"smoothed loss became {smoothed} at lr={lr:.3g}"
            break
        best = min(best, smoothed)
        if i > 0 and smoothed > diverge_factor * best:
            stop_note = f"loss diverged at lr={lr:.3g}"
            break
    suggested, reason = suggest_from_curve(lrs, losses)
    if stop_note:
        reason = f"{reason} ({stop_note})"
    return LRFinderResult(lrs=lrs, losses=losses, raw_losses=raw, suggested_lr=suggested, reason=reason)


def optimizer_step(optimizer, scaler, params, clip: float, measure: bool) -> float:
    """One optimiser step; returns the gradient norm (NaN when not measured this step)."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    grads = [q.grad for q in params if q.grad is not None]
    norm = torch.full((), float("nan"))
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_([q for q in params if q.grad is not None], clip)
    elif grads and measure:
        norm = torch.nn.utils.get_total_norm(grads)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if hasattr(norm, "full_tensor"):  # sharded (FSDP) gradients: the norm over every rank's shard
        norm = norm.full_tensor()
    return float(norm)
