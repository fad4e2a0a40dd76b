"""Image datasets: build the train/val/test splits of the collected images, and scan them for the data page."""

from __future__ import annotations

import logging
from typing import Any

from torch.utils.data import Dataset

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data.common import (
    DataBundle,
    Problem,
    ScanReport,
    class_counts,
    random_split_indices,
    require_nonempty,
    require_two_classes,
    stratified_split_indices,
    subsample_indices,
)
from finetune_gui.core.data.image_dataset import ImageDataset
from finetune_gui.core.data.image_records import SPLITS, collect_images
from finetune_gui.core.errors import DataError

__all__ = ["ImageDataset", "build_image_data", "scan_images"]

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- building


def build_image_data(
    config: RunConfig, *, image_size: int | None = None, mean: Any = None, std: Any = None
) -> DataBundle:
    from finetune_gui.core.data.decoded import plan_image_pipeline  # torchvision's transforms: not for scans

    kind = config.task.kind
    d = config.data
    rec = collect_images(config, kind)
    source = str(rec.source)
    require_nonempty(len(rec.paths), source, "images")

    # cap the total, stratified by (split, label)
    strat_keys = [
        ((rec.splits[k] if rec.splits else "") + "/" + (rec.targets[k] if kind.is_classification else ""))
        for k in range(len(rec.paths))
    ]
    keep = subsample_indices(len(rec.paths), d.max_samples, d.split_seed, strat_keys)
    paths = [rec.paths[k] for k in keep]
    targets = [rec.targets[k] for k in keep]
    splits = [rec.splits[k] for k in keep] if rec.splits is not None else None

    # splits
    if splits is not None:
        parts = {s: [k for k, v in enumerate(splits) if v == s] for s in SPLITS}
        require_nonempty(len(parts["train"]), f"{source} (train)", "training images")
        if not parts["val"] and d.val_fraction > 0:
            # train (and test) given but no val: hold out val_fraction of the training images
            pool = parts["train"]
            if kind.is_classification:
                tr, va, _ = stratified_split_indices([targets[k] for k in pool], d.val_fraction, 0.0, d.split_seed)
            else:
                tr, va, _ = random_split_indices(len(pool), d.val_fraction, 0.0, d.split_seed)
            parts["train"], parts["val"] = [pool[k] for k in tr], [pool[k] for k in va]
    elif kind.is_classification:
        tr, va, te = stratified_split_indices(targets, d.val_fraction, d.test_fraction, d.split_seed)
        parts = {"train": tr, "val": va, "test": te}
    else:
        tr, va, te = random_split_indices(len(paths), d.val_fraction, d.test_fraction, d.split_seed)
        parts = {"train": tr, "val": va, "test": te}
        if kind == TaskKind.IMAGE_MULTILABEL:
            _move_unseen_to_train(parts, targets)

    # labels
    train_targets = [targets[k] for k in parts["train"]]
    if kind == TaskKind.IMAGE_CLASSIFICATION:
        labels = sorted(set(train_targets))
        _check_unseen(source, labels, {s: [targets[k] for k in parts[s]] for s in ("val", "test")})
        require_two_classes(labels, source)
        index = {name: i for i, name in enumerate(labels)}
        encoded: list[Any] = [index[t] for t in targets]
        counts = class_counts(train_targets)
        target_kind = "class"
    elif kind == TaskKind.IMAGE_MULTILABEL:
        seen = {name for t in train_targets for name in t}
        labels = [c for c in rec.label_order if c in seen] if rec.label_order else sorted(seen)
        _check_unseen(source, labels, {s: [n for k in parts[s] for n in targets[k]] for s in ("val", "test")})
        if not labels:
            raise DataError(f"{source}: no labels found in the training rows; check data.label_columns")
        index = {name: i for i, name in enumerate(labels)}
        encoded = [[index[n] for n in t] for t in targets]
        counts = {name: sum(name in t for t in train_targets) for name in labels}
        target_kind = "multilabel"
        if not any(len(t) > 1 for t in targets) and rec.label_order is None and not d.label_separator:
            rec.problems.append(
                Problem(
                    source,
                    "every image has one label; for several labels per image set "
                    "data.label_separator or list several data.label_columns",
                )
            )
    else:
        labels, counts, encoded, target_kind = [], {}, list(targets), "regression"

    size = image_size or d.image_size
    pipeline = plan_image_pipeline(config, size, {s: len(parts[s]) for s in SPLITS})

    def make(split: str) -> Dataset:
        idx = parts[split]
        split_paths, split_targets = [paths[k] for k in idx], [encoded[k] for k in idx]
        return pipeline.dataset(split, split_paths, split_targets, target_kind, len(labels), mean, std)

    return DataBundle(
        train=make("train"),
        val=make("val"),
        test=make("test"),
        labels=labels,
        problems=rec.problems,
        class_counts=counts,
        collate_fn=None,
        source=source,
        input_pipeline=pipeline,
    )


def _move_unseen_to_train(parts: dict[str, list[int]], targets: list[list[str]]) -> None:
    """After a random multi-label split, move val/test samples whose labels train lacks into train."""
    seen = {n for k in parts["train"] for n in targets[k]}
    for split in ("val", "test"):
        moved = [k for k in parts[split] if not set(targets[k]) <= seen]
        for k in moved:
            seen.update(targets[k])
        if moved:
            parts[split] = [k for k in parts[split] if k not in set(moved)]
            parts["train"] = sorted(parts["train"] + moved)


def _check_unseen(source: str, labels: list[str], others: dict[str, list[str]]) -> None:
    known = set(labels)
    for split, names in others.items():
        unseen = sorted(set(names) - known)
        if unseen:
            raise DataError(
                f"{source}: label(s) {', '.join(repr(u) for u in unseen)} appear in the {split} split but not in "
                "train; add training images for them, or remove them from the "
                f"{split} split."
            )


# ---------------------------------------------------------------- scanning


def scan_images(config: RunConfig, kind: TaskKind) -> ScanReport:
    rec = collect_images(config, kind)
    counts: dict[str, int] = {}
    if kind == TaskKind.IMAGE_CLASSIFICATION:
        counts = class_counts(rec.targets)
    elif kind == TaskKind.IMAGE_MULTILABEL:
        for t in rec.targets:
            for n in t:
                counts[n] = counts.get(n, 0) + 1
        counts = dict(sorted(counts.items()))
    splits, split_labels = {}, {}
    if rec.splits is not None:
        splits = {s: rec.splits.count(s) for s in SPLITS if s in rec.splits}
        if kind == TaskKind.IMAGE_CLASSIFICATION:  # the engine holds val out of train per class
            split_labels = {s: class_counts([t for t, v in zip(rec.targets, rec.splits) if v == s]) for s in splits}
    return ScanReport(
        source=str(rec.source),
        format=rec.format,
        suggested_kind=kind,
        num_samples=len(rec.paths),
        labels=counts,
        problems=rec.problems,
        columns=rec.columns,
        splits=splits,
        split_labels=split_labels,
    )
