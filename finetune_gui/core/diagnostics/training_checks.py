"""Checks of how training went, each reading a RunRecord alone: overfitting, no learning, a learning rate too
high or too low, vanishing or exploding gradients, dead units, frozen layers that drift."""

from __future__ import annotations

import math
from statistics import median

from finetune_gui.core.diagnostics.findings import Finding, Remedy
from finetune_gui.core.diagnostics.record import RunRecord

OVERFIT_EVALS = 2  # evaluations in a row with validation loss above its best
OVERFIT_MARGIN = 0.02  # above the best by more than this share counts as rising
OVERFIT_RISE = 0.10  # and the last evaluation this far above the best: a trend, not a noisy split
SPIKE_FACTOR = 4.0  # a logged loss over this many times the lowest so far
GRAD_BURST_FACTOR = 20.0  # a gradient norm over this many times the early median
UPDATE_RATIO_HIGH = 3e-2  # healthy updates move weights by ~1e-3 of their size per step (Adam early: ~1e-2)
MIN_PROBES = 5
UPDATE_RATIO_LOW = 1e-5
FLOW_RATIO = 1e-3  # the input-side block's gradient against the output side's
DEAD_SHARE = 0.9


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _relative_drop(losses: list[float]) -> float | None:
    """How much the loss fell from the first fifth of the logged steps to the last fifth (0.3 = 30%)."""
    losses = _finite(losses)
    if len(losses) < 10:
        return None
    k = max(2, len(losses) // 5)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return (first - last) / abs(first) if first else None


def _lower_lr(record: RunRecord, why: str) -> Remedy:
    """The LR finder's value when there is one below the LR; else a tenth, or 1e-3 (the usual start for
    fine-tuning) when a tenth is still far too high."""
    if record.suggested_lr and record.suggested_lr < record.lr:
        return Remedy(f"Use the LR finder's {record.suggested_lr:.3g} ({why})", {"train.lr": record.suggested_lr})
    lower = record.lr / 10 if record.lr / 10 <= 1e-2 else 1e-3
    return Remedy(f"Learning rate {lower:.3g} ({why})", {"train.lr": float(f"{lower:.3g}")})


def overfitting(record: RunRecord) -> Finding | None:
    """Validation loss rising for OVERFIT_EVALS evaluations while the training loss falls."""
    rows = [e for e in record.epochs if "val_loss" in e and "train_loss" in e]
    if len(rows) < OVERFIT_EVALS + 1:
        return None
    b = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    best, after = rows[b], rows[b + 1 :]
    rising = [e for e in after if e["val_loss"] > best["val_loss"] * (1 + OVERFIT_MARGIN)]
    last = rows[-1]
    if len(rising) < OVERFIT_EVALS or last["train_loss"] >= best["train_loss"]:
        return None
    if last["val_loss"] < best["val_loss"] * (1 + OVERFIT_RISE):  # back near its best: noise of a small split
        return None
    spent = sum(e.get("elapsed_s", 0.0) for e in after)
    patience = max(1, record.patience or 2)
    saved = sum(e.get("elapsed_s", 0.0) for e in after[patience:])
    epoch = int(best["epoch"])
    caught = record.stopped_early
    remedies = []
    if not record.early_stopping:
        remedies.append(
            Remedy("Stop early (patience 2)", {"early_stopping.enabled": True, "early_stopping.patience": 2})
        )
    if record.task.startswith("image"):
        remedies.append(
            Remedy("Stronger augmentation", {"augment.auto_augment": "trivialaugment", "augment.random_erasing": 0.25})
        )
    remedies.append(Remedy("Dropout 0.3 before the head", {"model.head_dropout": 0.3}))
    remedies.append(Remedy("Weight decay 0.1", {"train.weight_decay": 0.1}))
    if record.freeze not in ("head-only", "") and not record.random_init:
        remedies.append(Remedy("Train the head only", {"model.freeze": "head-only"}))
    remedies.append(Remedy(f"Train {epoch} epoch{'' if epoch == 1 else 's'}", {"train.epochs": epoch}))
    when = (
        "Early stopping ended the run and kept the best epoch's weights."
        if caught
        else f"The epochs after it took {spent:.0f} s; early stopping with patience {patience} would have saved "
        f"{saved:.0f} s."
    )
    return Finding(
        id="overfitting",
        severity="info" if caught else "warning",
        title="Overfitting",
        explanation=(
            f"The model began to learn its training examples by heart rather than what carries over to new ones "
            f"(overfitting). After epoch {epoch} the validation loss rose from {best['val_loss']:.3g} to "
            f"{last['val_loss']:.3g} while the training loss kept falling ({best['train_loss']:.3g} → "
            f"{last['train_loss']:.3g}). {when} More varied data (augmentation), dropout, weight decay or fewer "
            "trainable layers make memorising harder."
        ),
        began_epoch=epoch + 1,
        evidence={
            "best_epoch": epoch,
            "best_val_loss": best["val_loss"],
            "last_val_loss": last["val_loss"],
            "train_loss_at_best": best["train_loss"],
            "last_train_loss": last["train_loss"],
            "seconds_after_best": spent,
            "seconds_early_stopping_saves": saved,
        },
        series={
            "train_loss": [[e["epoch"], e["train_loss"]] for e in rows],
            "val_loss": [[e["epoch"], e["val_loss"]] for e in rows],
        },
        remedies=remedies,
    )


def not_learning(record: RunRecord) -> Finding | None:
    """The training loss stays flat, the validation accuracy stays at the majority class's rate, or a regression
    never predicts better than the mean (validation R² never above 0)."""
    if record.random_init and record.freeze == "head-only":
        return None  # nothing_to_transfer says why
    drop = _relative_drop([s.loss for s in record.steps])
    accuracy = [e["val_accuracy"] for e in record.epochs if "val_accuracy" in e]
    majority = record.majority_rate
    at_chance = majority is not None and len(accuracy) >= 2 and max(accuracy[-2:]) <= majority + 0.02
    r2 = [e["val_r2"] for e in record.epochs if isinstance(e.get("val_r2"), int | float) and math.isfinite(e["val_r2"])]
    at_mean = len(r2) >= 2 and max(r2) <= 0.0
    flat = drop is not None and drop < 0.03 and len(record.epochs) >= 1
    if not (flat or at_chance or at_mean):
        return None
    said = (
        (
            f"the training loss fell only {100 * drop:.1f}% from the first steps to the last"
            if drop >= 0
            else f"the training loss did not fall: it rose {100 * -drop:.1f}% from the first steps to the last"
        )
        if flat
        else f"the validation accuracy ({accuracy[-1]:.3f}) is no better than always answering the most common "
        f"class ({majority:.3f})"
        if at_chance
        else f"the validation R² never rose above 0 (best {max(r2):.3g}): its answers are no better than always "
        "answering the training targets' mean"
    )
    remedies = [Remedy("Learning rate ×10", {"train.lr": float(f"{min(record.lr * 10, 1.0):.3g}")})]
    if record.freeze == "head-only":
        remedies.append(Remedy("Train the last 2 blocks too", {"model.freeze": "last-n", "model.unfreeze_last_n": 2}))
    return Finding(
        id="not-learning",
        severity="warning",
        title="The model is not learning",
        explanation=(
            f"Training is not getting anywhere (underfitting): {said}. Usually the learning rate is too small for "
            "the steps to matter, or too little of the model trains to fit the task."
        ),
        began_step=record.steps[0].step if record.steps else None,
        evidence={"loss_drop": drop if drop is not None else float("nan"), "majority_rate": majority or float("nan")},
        remedies=remedies,
    )


def lr_too_high(record: RunRecord) -> Finding | None:
    """Loss spikes, a gradient-norm burst, or updates far larger than ~1e-3 of the weights: before any NaN."""
    steps = [s for s in record.steps if math.isfinite(s.loss)]
    signal, step = "", None
    low = math.inf
    for i in range(2, len(steps)):  # the median of three logged losses: one odd batch is not a spike
        level = median(s.loss for s in steps[i - 2 : i + 1])
        if i >= 4 and level > SPIKE_FACTOR * low and level > low + 0.5:
            signal, step = f"the loss jumped to {level:.3g}, {level / low:.0f}× its lowest ({low:.3g})", steps[i].step
            break
        low = min(low, level)
    norms = _finite(s.grad_norm for s in record.steps)
    if not signal and len(norms) >= 6:
        early = median(norms[:5])
        for s in record.steps[5:]:
            if math.isfinite(s.grad_norm) and early > 0 and s.grad_norm > GRAD_BURST_FACTOR * early:
                signal, step = (
                    f"the gradient norm burst to {s.grad_norm:.3g} ({s.grad_norm / early:.0f}× its usual)",
                    s.step,
                )
                break
    ratios = [(p.step, p.update_ratio) for p in record.probes if math.isfinite(p.update_ratio)]
    drop = _relative_drop([s.loss for s in steps])
    big = len(ratios) >= MIN_PROBES and median(r for _, r in ratios) > UPDATE_RATIO_HIGH
    if not signal and big and drop is not None and drop < 0.1:  # big steps alone are fine while the loss falls
        typical = median(r for _, r in ratios)
        signal = f"each step changes the weights by {typical:.1e} of their size (healthy: about 1e-3)"
        signal, step = signal + " and the loss is not falling", ratios[0][0]
    if not signal:
        return None
    return Finding(
        id="lr-too-high",
        severity="warning",
        title="The learning rate is too high",
        explanation=(
            f"The steps are too big for this model and data: {signal}. Steps that overshoot make the loss jump "
            "instead of fall, and can end in NaN."
        ),
        began_step=step,
        evidence={"lr": record.lr},
        series={"loss": [[s.step, s.loss] for s in steps]},
        remedies=[
            _lower_lr(record, "smaller steps"),
            Remedy(
                "Warm up over the first 10% of steps", {"train.schedule": "cosine-warmup", "train.warmup_fraction": 0.1}
            ),
            Remedy("Clip gradients at 1.0", {"train.grad_clip": 1.0}),
        ],
    )


def lr_too_low(record: RunRecord) -> Finding | None:
    """Updates far smaller than ~1e-3 of the weights, with a loss that hardly moves."""
    ratios = _finite(p.update_ratio for p in record.probes)
    drop = _relative_drop([s.loss for s in record.steps])
    if len(ratios) < MIN_PROBES or median(ratios) >= UPDATE_RATIO_LOW or (drop is not None and drop > 0.1):
        return None
    suggested = record.suggested_lr if record.suggested_lr and record.suggested_lr > record.lr else None
    new_lr = suggested or float(f"{min(record.lr * 100, 1e-2):.3g}")
    return Finding(
        id="lr-too-low",
        severity="warning",
        title="The learning rate is too low",
        explanation=(
            f"Each step changes the weights by only {median(ratios):.1e} of their size (healthy: about 1e-3), so "
            "training crawls: the loss hardly moves however long it runs."
        ),
        began_step=record.probes[0].step,
        evidence={"update_ratio": median(ratios), "lr": record.lr},
        remedies=[Remedy(f"Learning rate {new_lr:g}", {"train.lr": new_lr})],
    )


def gradient_flow(record: RunRecord) -> Finding | None:
    """The backbone's first trainable block's gradient against its last one's: vanishing (≪) or exploding (≫).
    The head is left out: a new head's gradients are larger by nature, whatever the flow through the backbone."""
    ratios = []
    for p in record.probes:
        backbone = p.block_grad[: len(p.block_grad) - record.head_blocks]
        g = [v for v in backbone if math.isfinite(v) and v > 0]
        if len(g) >= 2:
            ratios.append((p.step, g[0] / g[-1]))
    if len(ratios) < 2:
        return None
    vanishing = sum(r < FLOW_RATIO for _, r in ratios) * 2 >= len(ratios)
    exploding = sum(r > 1 / FLOW_RATIO for _, r in ratios) * 2 >= len(ratios)
    if not (vanishing or exploding):
        return None
    typical = median(r for _, r in ratios)
    last = next(p for p in reversed(record.probes) if p.block_grad)
    series = {"gradient_flow": [[i, v] for i, v in enumerate(last.block_grad) if math.isfinite(v)]}
    if vanishing:
        return Finding(
            id="vanishing-gradients",
            severity="warning",
            title="Vanishing gradients",
            explanation=(
                f"The first trainable block gets gradients {1 / typical:.0e}× smaller than the backbone's last, so it "
                "hardly learns (vanishing gradients): each layer on the way back shrinks the signal, as saturating "
                "activations such as sigmoid do. Train fewer, later blocks, or a model with normalisation and "
                "residual connections."
            ),
            began_step=ratios[0][0],
            evidence={"first_to_last_gradient": typical},
            series=series,
            remedies=[Remedy("Train the last 2 blocks only", {"model.freeze": "last-n", "model.unfreeze_last_n": 2})],
        )
    return Finding(
        id="exploding-gradients",
        severity="warning",
        title="Exploding gradients",
        explanation=(
            f"The first trainable block gets gradients {typical:.0e}× larger than the backbone's last (exploding "
            "gradients): "
            "its updates are far too big. Clipping the gradient norm, or a lower learning rate, tames them."
        ),
        began_step=ratios[0][0],
        evidence={"first_to_last_gradient": typical},
        series=series,
        remedies=[Remedy("Clip gradients at 1.0", {"train.grad_clip": 1.0}), _lower_lr(record, "smaller steps")],
    )


def dead_units(record: RunRecord) -> Finding | None:
    """ReLU-family layers whose outputs are (almost) all zero on the last probes."""
    recent = [p.dead for p in record.probes if p.dead][-3:]
    if len(recent) < 2:
        return None
    layers = {name for d in recent for name in d}
    dead = {n: median(d[n] for d in recent if n in d) for n in layers}
    dead = {n: v for n, v in dead.items() if v >= DEAD_SHARE}
    if not dead:
        return None
    worst = max(dead, key=dead.get)
    return Finding(
        id="dead-units",
        severity="warning",
        title=f"Dead units in {len(dead)} layer(s)",
        explanation=(
            f"In {worst}, {100 * dead[worst]:.0f}% of the outputs are zero for every example (dead units): a ReLU "
            "that only outputs zero gets no gradient, so it never comes back. A too-high learning rate often "
            "pushes units there."
        ),
        evidence={f"dead_share/{n}": v for n, v in sorted(dead.items())},
        remedies=[
            _lower_lr(record, "fewer units pushed dead"),
            Remedy(
                "Warm up over the first 10% of steps", {"train.schedule": "cosine-warmup", "train.warmup_fraction": 0.1}
            ),
        ],
    )


def frozen_drift(record: RunRecord) -> Finding | None:
    """BatchNorm statistics that changed in layers meant to stay frozen."""
    if record.frozen_bn_drift <= 1e-6:
        return None
    return Finding(
        id="frozen-drift",
        severity="warning",
        title="Frozen layers drifted",
        explanation=(
            f"BatchNorm running statistics in frozen layers changed (by up to {record.frozen_bn_drift:.3g}): the "
            "layers meant to stay as pretrained did not, which undoes part of the transfer."
        ),
        evidence={"largest_change": record.frozen_bn_drift},
    )
