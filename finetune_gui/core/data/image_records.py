"""Where a dataset's images are: an ImageFolder layout (optionally with train/val/test folders) or a CSV/JSONL
manifest, read into ImageRecords (paths, targets, splits, problems), with each file checked."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data.common import (
    Problem,
    cell,
    format_from_suffix,
    looks_numeric,
    parse_number,
    read_table,
    require_columns,
)
from finetune_gui.core.data.fs import data_path_is_dir, file_problem, folder_identity, is_dir, list_dir, walk_files
from finetune_gui.core.data.image_files import check_image
from finetune_gui.core.errors import DataError
from finetune_gui.paths import expand_user

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


class _Problems(list):
    """Problems found while listing folders; called as on_error(path, reason) for one the OS refuses."""

    def __call__(self, path: str, reason: str) -> None:
        self.append(Problem(path, f"{reason}; skipped"))


def _images_under(folder: Path, problems: _Problems, seen: set) -> list[Path]:
    """Images in folder and below; `seen` (folders listed so far, shared by the dataset's walks) keeps a link
    to a folder listed already from listing its images twice."""
    found: list[Path] = []
    for dirpath, filenames in walk_files(folder, problems, _is_hidden, seen):
        found += [dirpath / f for f in filenames if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return found


def _subfolders(folder: Path, problems: _Problems) -> list[Path]:
    entries = list_dir(folder, problems)
    return sorted((p for p in entries if not _is_hidden(p.name) and is_dir(p, problems)), key=lambda p: p.name)


def _loose_images(folder: Path, rec: ImageRecords, hint: str) -> None:
    images = [p for p in list_dir(folder, _Problems()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    loose = [p for p in images if file_problem(p) is None]
    if loose:
        rec.problems.append(Problem(str(folder), f"{len(loose)} image(s) directly in this folder were ignored; {hint}"))


def _collect_folder(root: Path) -> ImageRecords:
    problems = _Problems()
    seen = {folder_identity(root)}
    subdirs = _subfolders(root, problems)
    if not subdirs and problems and problems[0].path == str(root):
        reason = problems[0].reason.removesuffix("; skipped")
        raise DataError(f"{root}: the data folder {reason}; check its permissions")
    split_dirs = {SPLIT_FOLDERS[p.name.lower()]: p for p in subdirs if p.name.lower() in SPLIT_FOLDERS}
    if "train" in split_dirs:
        rec = ImageRecords(root, "folder-splits", splits=[], problems=problems)
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
            for class_dir in _subfolders(folder, problems):
                for p in _images_under(class_dir, problems, seen):
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
    rec = ImageRecords(root, "folder", problems=problems)
    if not subdirs:
        if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in list_dir(root, problems)):
            raise DataError(
                f"{root}: images must be sorted into one subfolder per class (e.g. {root}/cat/1.jpg), "
                "or listed in a CSV manifest with their labels."
            )
        raise DataError(f"{root}: no class subfolders with images found; put the images in one subfolder per class.")
    _loose_images(root, rec, "put each image in a subfolder named after its class")
    for class_dir in subdirs:
        images = _images_under(class_dir, problems, seen)
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
        missing = file_problem(image)
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
        if missing:  # absent, or refused by the OS: a name too long, no permission, a link to itself
            rec.problems.append(Problem(str(path), f"image {missing}: {image}; row skipped", line))
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
    if data_path_is_dir(path):
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
