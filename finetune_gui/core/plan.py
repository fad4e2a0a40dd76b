"""What a run will be, known before it starts: the rules the GUI previews and the engine follows.

One home for each rule (split sizes, the drop-last rule, step counts, the number of outputs, freezing defaults
per task, normalisation constants), so a preview can never drift from what training does. Plain Python: no
Qt and no torch, so the GUI calls it on the main thread before torch has loaded.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune_gui.config import ModelConfig, RunConfig, TaskKind, TrainConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ASSUMED_TRAIN_SAMPLES = 1000  # steps are estimated from this until the data has been scanned
ASSUMED_CLASSES = 2  # the head's size until the data has been scanned


# ---------------------------------------------------------------- outputs


def num_outputs(task: TaskKind, num_labels: int) -> int:
    """Outputs of the new head: 1 for regression, none for a causal LM (it keeps its own), else one per label."""
    if task.is_regression:
        return 1
    if task.value == "causal-lm":
        return 0
    return num_labels


def planned_outputs(task: TaskKind, scan: Any) -> int:
    """num_outputs for a scan report's labels; ASSUMED_CLASSES until a scan has found some."""
    labels = getattr(scan, "labels", None) or {}
    return num_outputs(task, len(labels) if labels else ASSUMED_CLASSES)


# ---------------------------------------------------------------- splits


def split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """How many of n samples go to val and test. A non-zero fraction takes at least one sample (val from 2
    samples on, test from 3), and train always keeps at least one."""
    n_val = round(n * val_fraction)
    n_test = round(n * test_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = max(n_val, 1)
    if test_fraction > 0 and n >= 3:
        n_test = max(n_test, 1)
    while n_val + n_test > n - 1 and (n_val or n_test):
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    return n_val, n_test


def split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """(train, val, test) sizes of a random split of n samples."""
    n_val, n_test = split_counts(n, val_fraction, test_fraction)
    return n - n_val - n_test, n_val, n_test


def stratified_split_sizes(
    class_counts: dict[str, int], val_fraction: float, test_fraction: float
) -> tuple[int, int, int]:
    """(train, val, test) sizes of a split that keeps each class's share: each class is split on its own."""
    train = val = test = 0
    for count in class_counts.values():
        tr, va, te = split_sizes(count, val_fraction, test_fraction)
        train, val, test = train + tr, val + va, test + te
    return train, val, test


@dataclass(frozen=True)
class SplitPlan:
    """Train/val/test sizes as the engine will make them, where they come from, and whether they are exact."""

    sizes: dict[str, int]
    note: str
    exact: bool = True


def plan_splits(config: RunConfig, scan: Any) -> SplitPlan:
    """The split sizes for a config and a scan report (core.data.ScanReport)."""
    d, kind = config.data, config.task.kind
    if scan.splits:  # the data's own train/val/test folders or split column
        sizes = {s: scan.splits.get(s, 0) for s in ("train", "val", "test")}
        note = "from the data's own train/val/test folders or split column"
        exact = d.max_samples is None or d.max_samples >= scan.num_samples
        if not sizes["val"] and d.val_fraction > 0:
            train_labels = getattr(scan, "split_labels", {}).get("train")
            if kind.is_classification and train_labels:
                tr, va, _ = stratified_split_sizes(train_labels, d.val_fraction, 0.0)
            else:
                tr, va, _ = split_sizes(sizes["train"], d.val_fraction, 0.0)
            sizes["train"], sizes["val"] = tr, va
            note += f"; val is {d.val_fraction:.0%} held out from train"
        return SplitPlan(sizes, note, exact)
    n = scan.num_samples
    if d.max_samples is not None and d.max_samples < n:
        n = d.max_samples
    exact = True
    if kind.is_classification and scan.labels and n == scan.num_samples:
        tr, va, te = stratified_split_sizes(scan.labels, d.val_fraction, d.test_fraction)
        note = "random, keeping each class's share"
    else:
        tr, va, te = split_sizes(n, d.val_fraction, d.test_fraction)
        note = "random" + (f", from {n:,} of the samples (max_samples)" if n < scan.num_samples else "")
        # a subsample keeps each class's share, and each class is then split on its own: ±1 per class
        exact = not (kind.is_classification and n < scan.num_samples)
    if kind.value == "causal-lm":
        note += "; counted in documents here, in token blocks when training"
        exact = False
    elif kind.value == "image-multilabel":
        exact = False  # samples whose labels only val/test hold move to train
    return SplitPlan({"train": tr, "val": va, "test": te}, note, exact)


# ---------------------------------------------------------------- steps


def drops_last_batch(n: int, batch_size: int) -> bool:
    """Whether training drops the epoch's last batch: only a batch of one sample, which breaks BatchNorm."""
    return n > batch_size and n % batch_size == 1


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Training batches in one epoch of n samples."""
    return math.ceil(n / batch_size) - (1 if drops_last_batch(n, batch_size) else 0)


@dataclass(frozen=True)
class StepPlan:
    """Optimiser steps of a run: per epoch and in all (max_steps applied)."""

    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int


def plan_steps(train: TrainConfig, batches: int) -> StepPlan:
    """The step counts for `batches` training batches per epoch."""
    per_epoch = math.ceil(batches / train.grad_accum)
    total = per_epoch * train.epochs
    if train.max_steps:
        total = min(total, train.max_steps)
    return StepPlan(batches, per_epoch, total)


def training_samples(config: RunConfig, scan: Any) -> tuple[int, str]:
    """(training samples, where that number comes from): the planned train split, or an assumption."""
    if scan is None or not getattr(scan, "num_samples", 0):
        return (
            ASSUMED_TRAIN_SAMPLES,
            f"estimated: no data scanned yet, {ASSUMED_TRAIN_SAMPLES:,} training samples assumed",
        )
    split = plan_splits(config, scan)
    n = max(1, split.sizes["train"])
    if config.task.kind.value == "causal-lm":
        return n, f"estimated: {n:,} documents (training counts token blocks, usually more)"
    source = "the data's train split" if scan.splits else f"{scan.num_samples:,} samples less the val/test shares"
    return n, f"{n:,} training samples ({source})"


def planned_steps(config: RunConfig, scan: Any) -> tuple[int, int, str]:
    """(steps per epoch, total optimiser steps, explanation) as the engine will count them."""
    t = config.train
    n, source = training_samples(config, scan)
    plan = plan_steps(t, batches_per_epoch(n, t.batch_size))
    per_epoch, total = plan.steps_per_epoch, plan.total_steps
    text = (
        f"{_count(per_epoch, 'step')} per epoch × {_count(t.epochs, 'epoch')} = {_count(total, 'step')}; from {source}."
    )
    if t.max_steps and total == t.max_steps:
        text += f" Capped at max_steps = {t.max_steps:,}."
    if t.schedule == "plateau":
        text += " Plateau drops depend on the validation loss and cannot be drawn in advance."
    return per_epoch, total, text


# ---------------------------------------------------------------- model and freezing defaults per task

#: The model a task family starts from: small, well known, and able to do every task of its family.
DEFAULT_MODELS = {"image": "resnet18", "text": "distilbert-base-uncased", "causal-lm": "gpt2"}


def task_family(task: TaskKind) -> str:
    """ "image", "text" (classification and regression) or "causal-lm": tasks whose models are interchangeable."""
    if task.is_image:
        return "image"
    return "causal-lm" if task.value == "causal-lm" else "text"


def model_for_task(task: TaskKind, previous: TaskKind) -> str | None:
    """The model a change of task from `previous` to `task` needs instead of the current one, or None when the
    current one still fits: within a family it does, and a language model can classify text too."""
    old, new = task_family(previous), task_family(task)
    if old == new or (old == "causal-lm" and new == "text"):
        return None
    return DEFAULT_MODELS[new]


def freezing_for_task(task: TaskKind, model: ModelConfig) -> tuple[str, int] | None:
    """(freeze, unfreeze_last_n) a task needs instead of the model config's, or None when it fits.

    A causal LM has no separate head (its output layer shares the embeddings), so "head only" would train
    nothing: such a setup trains the last two blocks instead. LoRA adapters train whatever the strategy.
    """
    if task.value == "causal-lm" and model.freeze == "head-only" and not model.lora.enabled:
        return "last-n", max(model.unfreeze_last_n, 2)
    return None


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


FROZEN_RANDOM_BACKBONE = (
    "Head only on random weights: the backbone has learned nothing to pass on, so training only the head of a "
    "random network usually stays near chance accuracy. Train every layer (Unfreeze all, model.freeze = none), "
    "or get the pretrained weights."
)


def freezing_for_weights(model: ModelConfig, random_init: bool) -> str | None:
    """The freeze strategy a model starting from random weights needs instead of the config's, or None.

    A pretrained backbone is worth keeping frozen; a random one is not: it trains with the rest ("none").
    LoRA adapters decide what trains themselves.
    """
    if random_init and model.freeze == "head-only" and not model.lora.enabled:
        return "none"
    return None


#: The usual starting learning rates: a new head or a network trained from scratch takes big steps; a pretrained
#: transformer that trains its own layers takes small ones (bigger steps overwrite what it learned); LoRA's
#: small adapters sit in between.
LR_HEAD_OR_IMAGE, LR_TRANSFORMER, LR_LORA = 1e-3, 5e-5, 2e-4


def usual_lr(task: TaskKind, model: ModelConfig) -> float:
    """The learning rate a setup usually starts from (core of the Training setup's default)."""
    if task_family(task) == "image" or not model.pretrained:
        return LR_HEAD_OR_IMAGE
    if model.lora.enabled:
        return LR_LORA
    return LR_HEAD_OR_IMAGE if model.freeze == "head-only" else LR_TRANSFORMER


def lr_for_change(
    lr: float, task: TaskKind, before: ModelConfig, after: ModelConfig, previous: TaskKind
) -> float | None:
    """The learning rate after a change of task or model, or None to keep it: only an LR that was the usual
    one for the setup before the change follows to the usual one for the new setup (a chosen LR stays)."""
    old, new = usual_lr(previous, before), usual_lr(task, after)
    return new if math.isclose(lr, old) and not math.isclose(old, new) else None


# ---------------------------------------------------------------- LR finder suggestions

# what an LR sweep does not depend on: its suggestion stays valid while only these change
NOT_SWEPT = {"name", "description", "early_stopping", "checkpoint", "logging"}
NOT_SWEPT_TRAIN = {"lr", "epochs", "schedule", "warmup_fraction", "step_epochs", "milestones", "gamma",
                   "min_lr_ratio", "plateau_patience", "max_steps", "log_every"}  # fmt: skip


def sweep_key(config: RunConfig) -> str:
    """A fingerprint of the setup an LR sweep measured: data, model, freezing, augmentation, batch and optimiser.

    A suggested LR applies to a run whose config has the same key; changing the LR or the epochs keeps it."""
    data = {k: v for k, v in config.to_dict().items() if k not in NOT_SWEPT}
    data["train"] = {k: v for k, v in data["train"].items() if k not in NOT_SWEPT_TRAIN}
    data["data"]["path"] = str(config.resolve(config.data.path)) if config.data.path else ""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
