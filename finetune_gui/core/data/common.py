"""Shared pieces of the data layer: problems, bundles, splits, table and text reading."""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from finetune_gui.core.data.fs import UnreadableFile, os_reason
from finetune_gui.core.errors import DataError
from finetune_gui.core.plan import split_counts

#: Cap of rows/files listed one by one; beyond it problems are summarised.
MAX_LISTED_PROBLEMS = 1000


@dataclass(frozen=True)
class Problem:
    """A sample that was skipped, or a warning about the data."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset
    test: Dataset
    labels: list[str]
    problems: list[Problem]
    class_counts: dict[str, int]
    collate_fn: Callable | None = None
    source: str = ""
    input_pipeline: Any = None  # images: decoded.ImagePipeline (decoded once or at every read, and why)


@dataclass
class ScanReport:
    """What a cheap look at the data found, for the GUI's data page."""

    source: str
    format: str  # folder, folder-splits, csv, tsv, jsonl, txt
    suggested_kind: Any  # TaskKind | None
    num_samples: int
    labels: dict[str, int] = field(default_factory=dict)  # label -> count ({} for regression / LM)
    problems: list[Problem] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # CSV/TSV/JSONL columns found
    splits: dict[str, int] = field(default_factory=dict)  # predefined split -> sample count ({} = random split)
    split_labels: dict[str, dict[str, int]] = field(default_factory=dict)  # predefined split -> label -> count
    suggested_columns: dict[str, Any] = field(default_factory=dict)  # data settings guessed from the contents


# ---------------------------------------------------------------- splits


def random_split_indices(
    n: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Seeded shuffle split of range(n) into (train, val, test), sized by plan.split_counts."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val, n_test = split_counts(n, val_fraction, test_fraction)
    val = sorted(order[:n_val])
    test = sorted(order[n_val : n_val + n_test])
    train = sorted(order[n_val + n_test :])
    return train, val, test


def stratified_split_indices(
    labels: Sequence[Hashable], val_fraction: float, test_fraction: float, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Seeded split that keeps class shares; a class with one sample goes to train, with two also to val, ..."""
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    rng = random.Random(seed)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for y in sorted(by_class, key=str):
        idx = by_class[y]
        rng.shuffle(idx)
        n_val, n_test = split_counts(len(idx), val_fraction, test_fraction)
        val += idx[:n_val]
        test += idx[n_val : n_val + n_test]
        train += idx[n_val + n_test :]
    return sorted(train), sorted(val), sorted(test)


def subsample_indices(
    n: int, max_samples: int | None, seed: int, labels: Sequence[Hashable] | None = None
) -> list[int]:
    """At most max_samples of range(n), seeded; stratified (every class first, then in proportion) with labels."""
    if max_samples is None or max_samples >= n:
        return list(range(n))
    rng = random.Random(seed)
    if labels is None:
        return sorted(rng.sample(range(n), max_samples))
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    keyed: list[tuple[float, float, int]] = []
    for y in sorted(by_class, key=str):
        idx = by_class[y]
        rng.shuffle(idx)
        for k, i in enumerate(idx):
            keyed.append((k / len(idx), rng.random(), i))
    keyed.sort()
    return sorted(i for _, _, i in keyed[:max_samples])


def class_counts(labels: Sequence[Hashable]) -> dict[str, int]:
    counts = Counter(str(y) for y in labels)
    return dict(sorted(counts.items()))


def require_nonempty(n: int, source: str, what: str = "samples") -> None:
    if n == 0:
        raise DataError(
            f"{source}: no usable {what} found. Check data.path and data.format, and the problems listed for "
            "skipped files or rows."
        )


def require_two_classes(labels: Sequence[str], source: str) -> None:
    if len(labels) < 2:
        only = f" (only '{labels[0]}')" if labels else ""
        raise DataError(
            f"{source}: classification needs at least two classes, found {len(labels)}{only}. "
            "Add data for another class, or choose a regression task."
        )


# ---------------------------------------------------------------- reading text and tables


def read_text(path: Path) -> str:
    """A UTF-8 file's text (a BOM is stripped); DataError naming line and byte for anything else."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile(path, "file not found; check data.path") from None
    except OSError as e:
        raise UnreadableFile(path, os_reason(e)) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a BOM ("Unicode text" from spreadsheets)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 text (byte offset {e.start}, value 0x{data[e.start]:02x}). "
            "Re-save the file as UTF-8 (e.g. in a text editor or spreadsheet: Save As → UTF-8)."
        ) from None


def format_from_suffix(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}.get(
        suffix
    )


@dataclass
class Table:
    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, Any]]]  # (1-based line where the row starts, row)
    problems: list[Problem] = field(default_factory=list)


def read_table(path: Path, fmt: str) -> Table:
    """Rows of a CSV/TSV (first row = header) or JSONL file, with their line numbers."""
    text = read_text(path)
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    delimiter = "\t" if fmt == "tsv" else ","
    first = text.split("\n", 1)[0]
    if fmt == "csv" and "," not in first:  # tab- or semicolon-separated files saved as .csv
        delimiter = "\t" if "\t" in first else ";" if ";" in first else ","
    # one cell may hold a whole document; the csv module's default cap (128 KiB) would refuse it
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: the file is empty; the first row must name the columns")
        columns = [h.strip() for h in header]
        rows: list[tuple[int, dict[str, Any]]] = []
        problems: list[Problem] = []
        start = reader.line_num + 1
        for cells in reader:
            line = start
            start = reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) > len(columns):
                problems.append(
                    Problem(
                        str(path),
                        f"{len(cells)} cells but {len(columns)} columns; extra cells ignored "
                        "(quote cells that contain the delimiter)",
                        line,
                    )
                )
            row = {c: (cells[k] if k < len(cells) else "") for k, c in enumerate(columns)}
            rows.append((line, row))
    except csv.Error as e:
        raise DataError(f"{path}, line {reader.line_num}: not valid {fmt.upper()} ({e})") from None
    return Table(path, columns, rows, problems)


def _read_jsonl(path: Path, text: str) -> Table:
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    columns: dict[str, None] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append(Problem(str(path), f"not valid JSON ({e.msg}); row skipped", n))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(str(path), "not a JSON object ({...}); row skipped", n))
            continue
        for k in obj:
            columns.setdefault(str(k), None)
        rows.append((n, obj))
    return Table(path, list(columns), rows, problems)


def require_columns(table: Table, needed: Sequence[str], setting: str) -> None:
    missing = [c for c in needed if c not in table.columns]
    if missing:
        have = ", ".join(repr(c) for c in table.columns) or "(none)"
        raise DataError(
            f"{table.path}: column(s) {', '.join(repr(c) for c in missing)} not found; the file has columns {have}. "
            f"Set {setting} to one of them."
        )


def cell(row: dict[str, Any], column: str) -> str:
    """A cell as stripped text ('' for missing / null). JSON values of mixed types read the same way whatever
    their type: 1, 1.0 and "1" are all "1"; true/false are "true"/"false"."""
    v = row.get(column)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) < 2**53:
            return str(int(v))
    return str(v).strip()


def nested_cell(row: dict[str, Any], column: str) -> str | None:
    """'a list' / 'an object' when a JSON cell holds one (not a single value), else None."""
    v = row.get(column)
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return None


def parse_number(text: str, path: Path, line: int | None, column: str) -> float:
    where = f"{path}, line {line}" if line is not None else str(path)
    try:
        value = float(text)
    except ValueError:
        raise DataError(
            f"{where}: regression label {text!r} in column '{column}' is not a number. "
            "Fix the value, or choose a classification task if the labels are names."
        ) from None
    if not math.isfinite(value):
        raise DataError(f"{where}: regression label {text!r} in column '{column}' is not a finite number; fix it.")
    return value


def looks_numeric(values: Sequence[str]) -> bool:
    vals = [v for v in values if v != ""]
    if not vals:
        return False
    try:
        for v in vals:
            float(v)
    except ValueError:
        return False
    return len(set(vals)) > min(20, max(2, len(vals) // 2)) or any("." in v for v in vals)


# ---------------------------------------------------------------- batching


class PadCollator:
    """Pads dict samples to the longest in the batch (picklable, for DataLoader workers)."""

    def __init__(self, pad_token_id: int, label_kind: str):
        self.pad_token_id = int(pad_token_id)
        self.label_kind = label_kind  # "class", "regression" or "lm"

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(s["input_ids"]) for s in batch)
        ids = torch.full((len(batch), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for k, s in enumerate(batch):
            n = len(s["input_ids"])
            ids[k, :n] = s["input_ids"]
            mask[k, :n] = s["attention_mask"]
        out = {"input_ids": ids, "attention_mask": mask}
        if self.label_kind == "lm":
            labels = torch.full((len(batch), longest), -100, dtype=torch.long)
            for k, s in enumerate(batch):
                n = len(s["labels"])
                labels[k, :n] = s["labels"]
            out["labels"] = labels
        elif self.label_kind == "regression":
            out["labels"] = torch.tensor([[float(s["labels"])] for s in batch], dtype=torch.float32)
        else:
            out["labels"] = torch.tensor([int(s["labels"]) for s in batch], dtype=torch.long)
        return out


def pad_id_of(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        v = getattr(tokenizer, attr, None)
        if v is not None:
            return int(v)
    return 0


def need_tokenizer(tokenizer: Any, kind: str) -> None:
    if tokenizer is None:
        raise ValueError(f"build_data needs a tokenizer for {kind} data")
