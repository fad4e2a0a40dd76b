"""Image datasets: ImageFolder layouts (optionally with train/val/test folders) and CSV manifests."""

from __future__ import annotations

import logging
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data.common import (
    DataBundle,
    Problem,
    ScanReport,
    cell,
    class_counts,
    format_from_suffix,
    looks_numeric,
    parse_number,
    random_split_indices,
    read_table,
    require_columns,
    require_nonempty,
    require_two_classes,
    stratified_split_indices,
    subsample_indices,
)
from finetune_gui.core.errors import DataError
from finetune_gui.paths import expand_user

log = logging.getLogger(__name__)

#: Largest image accepted (pixels); larger files are skipped as possible decompression bombs.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm", ".ico"}
)
SPLIT_FOLDERS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
SPLITS = ("train", "val", "test")
_TRUE = {"1", "1.0", "true", "yes", "y", "x"}
_FALSE = {"", "0", "0.0", "false", "no", "n", "-1"}
_VERIFY_THREADS = 8


# ---------------------------------------------------------------- reading one image


class _Bomb(Exception):
    pass


def _open_checked(path: str | os.PathLike) -> Image.Image:
    im = Image.open(path)
    w, h = im.size
    if w * h > MAX_PIXELS:
        im.close()
        raise _Bomb(f"{w}x{h} pixels is over the {MAX_PIXELS // 1_000_000} megapixel limit")
    return im


def check_image(path: Path) -> str | None:
    """Why path is not a usable image, or None; reads headers and checksums, not the whole picture."""
    try:
        size = path.stat().st_size
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if size == 0:
        return "empty file (0 bytes); delete it or replace it with the real image"
    try:
        with _open_checked(path) as im:
            im.verify()  # PNG: every chunk's checksum; JPEG: nothing, hence the check below
            jpeg = im.format == "JPEG"
        if jpeg and not _ends_with_jpeg_eoi(path):
            _decode_small(path)  # cut off, or data after the image (motion photos): decoding tells which
    except (_Bomb, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return f"too large to open safely ({e}); possibly a decompression bomb — shrink it or remove it"
    except Exception as e:  # noqa: BLE001 - any decoder failure means a skipped file
        return f"not a readable image ({type(e).__name__}: {e}); delete or replace it"
    return None


def _ends_with_jpeg_eoi(path: Path) -> bool:
    """True when a JPEG file ends with its end-of-image marker (what a file cut off while copying lacks)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 32))
        tail = f.read().rstrip(b"\x00\r\n ")
    return tail.endswith(b"\xff\xd9")


def _decode_small(path: Path) -> None:
    """Decode a JPEG at 1/8 scale (fast), which still reads all of its data: raises if it is cut off."""
    with _open_checked(path) as im:
        im.draft("RGB", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
        im.load()


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: 16/32-bit greys are scaled (not clipped), transparency goes on white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(im).astype(np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if mode.startswith("I;16") or (mode == "I" and lo >= 0 and hi <= 65535):
            arr = arr / 257.0
        elif mode == "F" and lo >= 0 and hi <= 1.0:
            arr = arr * 255.0
        else:
            arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
        return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        return background.convert("RGB")
    return im.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Decode an image fully, apply its EXIF orientation, and return it as RGB (file closed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_checked(path) as im:
            im.load()
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # noqa: BLE001 - a broken EXIF block should not lose the picture
                pass
            return to_rgb(im)


# ---------------------------------------------------------------- the dataset


class ImageDataset(Dataset):
    """Images with class indices, multi-hot vectors or regression values. Holds paths only (picklable)."""

    def __init__(self, paths: list[str], targets: list[Any], transform: Any, target_kind: str, num_labels: int = 0):
        self.paths = list(paths)
        self.targets = list(targets)  # int class / list[int] label indices / float
        self.transform = transform
        self.target_kind = target_kind  # "class", "multilabel" or "regression"
        self.num_labels = num_labels
        self.failures: list[Problem] = []  # images that failed to decode while training (this process)

    def __len__(self) -> int:
        return len(self.paths)

    def target(self, i: int) -> Any:
        y = self.targets[i]
        if self.target_kind == "class":
            return int(y)
        if self.target_kind == "multilabel":
            v = torch.zeros(self.num_labels, dtype=torch.float32)
            if y:
                v[list(y)] = 1.0
            return v
        return torch.tensor([float(y)], dtype=torch.float32)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        n = len(self.paths)
        for step in range(min(n, 16)):
            j = (i + step) % n
            try:
                image = load_rgb(self.paths[j])
            except Exception as e:  # noqa: BLE001 - fall back to the next image, deterministically
                problem = Problem(
                    self.paths[j],
                    f"could not be decoded while training ({type(e).__name__}: {e}); "
                    "the next image was used instead — delete or replace this file",
                )
                if problem not in self.failures:
                    self.failures.append(problem)
                    log.warning("%s", problem)
                continue
            x = self.transform(image) if self.transform is not None else image
            return x, self.target(j)
        raise DataError(f"{self.paths[i]}: this and the following images could not be decoded; check the data folder")


# ---------------------------------------------------------------- collecting samples


@dataclass
class ImageRecords:
    source: Path
    format: str
    paths: list[str] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)  # str / list[str] / float
    splits: list[str] | None = None  # per sample, when the data defines its splits
    problems: list[Problem] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    label_order: list[str] | None = None  # one-hot manifest columns, in file order


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.startswith("__")


def _images_under(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for f in sorted(filenames):
            if not _is_hidden(f) and Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / f)
    return found


def _subfolders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not _is_hidden(p.name)), key=lambda p: p.name)


def _loose_images(folder: Path, rec: ImageRecords, hint: str) -> None:
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if loose:
        rec.problems.append(Problem(str(folder), f"{len(loose)} image(s) directly in this folder were ignored; {hint}"))


def _collect_folder(root: Path) -> ImageRecords:
    subdirs = _subfolders(root)
    split_dirs = {SPLIT_FOLDERS[p.name.lower()]: p for p in subdirs if p.name.lower() in SPLIT_FOLDERS}
    if "train" in split_dirs:
        rec = ImageRecords(root, "folder-splits", splits=[])
        others = [p.name for p in subdirs if p.name.lower() not in SPLIT_FOLDERS]
        if others:
            rec.problems.append(
                Problem(
                    str(root),
                    f"folders {', '.join(others)} ignored: with a train folder, only train/val/test folders are read",
                )
            )
        for split in SPLITS:
            if split not in split_dirs:
                continue
            folder = split_dirs[split]
            _loose_images(folder, rec, "put each image in a subfolder named after its class")
            for class_dir in _subfolders(folder):
                for p in _images_under(class_dir):
                    rec.paths.append(str(p))
                    rec.targets.append(class_dir.name)
                    rec.splits.append(split)  # type: ignore[union-attr]
        return rec
    if split_dirs:
        names = ", ".join(p.name for p in split_dirs.values())
        raise DataError(
            f"{root}: found {names} but no 'train' folder. Add a train folder with one subfolder per "
            "class, or rename these folders if they are classes."
        )
    rec = ImageRecords(root, "folder")
    if not subdirs:
        if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir()):
            raise DataError(
                f"{root}: images must be sorted into one subfolder per class (e.g. {root}/cat/1.jpg), "
                "or listed in a CSV manifest with their labels."
            )
        raise DataError(f"{root}: no class subfolders with images found; put the images in one subfolder per class.")
    _loose_images(root, rec, "put each image in a subfolder named after its class")
    for class_dir in subdirs:
        images = _images_under(class_dir)
        if not images:
            rec.problems.append(Problem(str(class_dir), "no images in this class folder; it is not used as a class"))
        for p in images:
            rec.paths.append(str(p))
            rec.targets.append(class_dir.name)
    return rec


def _collect_manifest(path: Path, fmt: str, config: RunConfig, kind: TaskKind) -> ImageRecords:
    d = config.data
    table = read_table(path, fmt)
    rec = ImageRecords(path, fmt, problems=list(table.problems), columns=table.columns)
    label_cols = list(d.label_columns)
    if not label_cols:
        raise DataError(f"{path}: no label column set; set data.label_columns to one of {', '.join(table.columns)}")
    require_columns(table, [d.path_column], "data.path_column")
    require_columns(table, label_cols if kind == TaskKind.IMAGE_MULTILABEL else label_cols[:1], "data.label_columns")
    split_col = next((c for c in table.columns if c.lower() == "split"), None)
    if split_col is not None:
        rec.splits = []
    one_hot = False
    if kind == TaskKind.IMAGE_MULTILABEL and len(label_cols) > 1:
        one_hot = all(cell(row, c).lower() in _TRUE | _FALSE for _, row in table.rows for c in label_cols)
        if one_hot:
            rec.label_order = label_cols
    base = path.parent
    for line, row in table.rows:
        raw_path = cell(row, d.path_column)
        if not raw_path:
            rec.problems.append(Problem(str(path), f"no image path in column '{d.path_column}'; row skipped", line))
            continue
        image = expand_user(raw_path)
        image = image if image.is_absolute() else base / image
        if kind == TaskKind.IMAGE_MULTILABEL:
            if one_hot:
                target: Any = [c for c in label_cols if cell(row, c).lower() in _TRUE]
            else:
                values = [cell(row, c) for c in label_cols]
                if d.label_separator:
                    values = [part.strip() for v in values for part in v.split(d.label_separator)]
                target = list(dict.fromkeys(v for v in values if v))
                if not target:
                    rec.problems.append(Problem(str(path), "no label; row skipped", line))
                    continue
        else:
            value = cell(row, label_cols[0])
            if not value:
                rec.problems.append(Problem(str(path), f"no label in column '{label_cols[0]}'; row skipped", line))
                continue
            target = parse_number(value, path, line, label_cols[0]) if kind.is_regression else value
        split = "train"
        if split_col is not None:
            s = cell(row, split_col).lower()
            if s not in SPLIT_FOLDERS:
                rec.problems.append(Problem(str(path), f"split {s!r} is not train, val or test; row skipped", line))
                continue
            split = SPLIT_FOLDERS[s]
        if not image.is_file():
            rec.problems.append(Problem(str(path), f"image not found: {image}; row skipped", line))
            continue
        rec.paths.append(str(image))
        rec.targets.append(target)
        if rec.splits is not None:
            rec.splits.append(split)
    if rec.splits is not None and "train" not in rec.splits:
        rec.splits = None  # a split column without training rows is ignored; random split instead
        rec.problems.append(Problem(str(path), f"column '{split_col}' names no 'train' rows; a random split is used"))
    return rec


def _verify(rec: ImageRecords) -> None:
    """Drop unreadable images from rec, listing each as a problem."""
    paths = [Path(p) for p in rec.paths]
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        if len(paths) > 64:
            with ThreadPoolExecutor(_VERIFY_THREADS) as pool:
                reasons = list(pool.map(check_image, paths))
        else:
            reasons = [check_image(p) for p in paths]
    keep = [k for k, r in enumerate(reasons) if r is None]
    for p, r in zip(paths, reasons):
        if r is not None:
            rec.problems.append(Problem(str(p), r))
    if len(keep) != len(paths):
        rec.paths = [rec.paths[k] for k in keep]
        rec.targets = [rec.targets[k] for k in keep]
        if rec.splits is not None:
            rec.splits = [rec.splits[k] for k in keep]


def collect_images(config: RunConfig, kind: TaskKind | None = None, *, verify: bool = True) -> ImageRecords:
    kind = kind or config.task.kind
    d = config.data
    if not d.path:
        raise DataError("no data chosen; set data.path to a folder of images or a CSV manifest")
    path = config.resolve(d.path)
    if not path.exists():
        raise DataError(
            f"{path}: data path not found; check data.path (relative paths start at the config file's folder)"
        )
    if path.is_dir():
        if d.format not in ("auto", "folder"):
            raise DataError(f"{path}: is a folder but data.format is '{d.format}'; set data.format to folder or auto")
        if kind in (TaskKind.IMAGE_MULTILABEL, TaskKind.IMAGE_REGRESSION):
            raise DataError(
                f"{path}: {kind.value} needs a CSV manifest (columns '{d.path_column}' and the label "
                "column(s)); a folder of class subfolders only gives single-label classes"
            )
        rec = _collect_folder(path)
    else:
        fmt = d.format if d.format != "auto" else (format_from_suffix(path) or "csv")
        if fmt not in ("csv", "tsv", "jsonl"):
            raise DataError(f"{path}: image data must be a folder or a CSV/TSV/JSONL manifest, not '{fmt}'")
        rec = _collect_manifest(path, fmt, config, kind)
    if verify:
        _verify(rec)
    return rec


# ---------------------------------------------------------------- building


def build_image_data(
    config: RunConfig, *, image_size: int | None = None, mean: Any = None, std: Any = None
) -> DataBundle:
    from finetune_gui.core.data.augment import build_image_transforms

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
    train_tf = build_image_transforms(config.augment, size, mean, std, train=True)
    eval_tf = build_image_transforms(config.augment, size, mean, std, train=False)

    def make(split: str, tf: Any) -> Dataset:
        idx = parts[split]
        return ImageDataset([paths[k] for k in idx], [encoded[k] for k in idx], tf, target_kind, len(labels))

    return DataBundle(
        train=make("train", train_tf),
        val=make("val", eval_tf),
        test=make("test", eval_tf),
        labels=labels,
        problems=rec.problems,
        class_counts=counts,
        collate_fn=None,
        source=source,
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


def suggest_manifest_kind(config: RunConfig, columns: list[str], rows: list[dict[str, Any]]) -> TaskKind:
    """Guess the image task from a manifest's label columns."""
    d = config.data
    label_cols = [c for c in d.label_columns if c in columns]
    if len(label_cols) > 1 or (
        d.label_separator and any(d.label_separator in cell(r, label_cols[0]) for r in rows if label_cols)
    ):
        return TaskKind.IMAGE_MULTILABEL
    if label_cols and looks_numeric([cell(r, label_cols[0]) for r in rows]):
        return TaskKind.IMAGE_REGRESSION
    return TaskKind.IMAGE_CLASSIFICATION
