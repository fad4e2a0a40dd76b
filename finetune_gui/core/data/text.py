"""Text classification / regression data from CSV, TSV or JSONL files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data.common import (
    DataBundle,
    PadCollator,
    Problem,
    ScanReport,
    Table,
    cell,
    class_counts,
    format_from_suffix,
    need_tokenizer,
    nested_cell,
    pad_id_of,
    parse_number,
    random_split_indices,
    read_table,
    require_columns,
    require_nonempty,
    require_two_classes,
    stratified_split_indices,
    subsample_indices,
)
from finetune_gui.core.data.fs import data_path_is_dir
from finetune_gui.core.errors import DataError


class TokenizedDataset(Dataset):
    """Pre-tokenised samples as plain lists (picklable, no tokenizer inside)."""

    def __init__(self, input_ids: list[list[int]], labels: list[Any]):
        self.input_ids = input_ids
        self.targets = labels  # int class index or float

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = torch.tensor(self.input_ids[i], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": self.targets[i]}


@dataclass
class TextRecords:
    source: Path
    format: str
    texts: list[str] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)  # str label or float
    lines: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def data_file(config: RunConfig) -> tuple[Path, str]:
    """The resolved data file and its format (csv/tsv/jsonl/txt) or ('folder')."""
    d = config.data
    if not d.path:
        raise DataError("no data chosen; set data.path to a CSV, TSV, JSONL or TXT file")
    path = config.resolve(d.path)
    if data_path_is_dir(path):
        return path, "folder" if d.format == "auto" else d.format
    fmt = d.format if d.format not in ("auto", "folder") else (format_from_suffix(path) or "")
    if not fmt:
        raise DataError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'; set data.format "
            "to csv, tsv, jsonl or txt"
        )
    return path, fmt


def read_text_table(config: RunConfig) -> Table:
    path, fmt = data_file(config)
    if fmt not in ("csv", "tsv", "jsonl"):
        raise DataError(
            f"{path}: text classification data must be a CSV, TSV or JSONL file with columns "
            f"'{config.data.text_column}' and '{config.data.label_columns[0] if config.data.label_columns else 'label'}'"
        )
    return read_table(path, fmt)


def collect_text(config: RunConfig, kind: TaskKind, table: Table | None = None) -> TextRecords:
    d = config.data
    table = table or read_text_table(config)
    if not d.label_columns:
        raise DataError(
            f"{table.path}: no label column set; set data.label_columns to one of {', '.join(table.columns)}"
        )
    label_col = d.label_columns[0]
    require_columns(table, [d.text_column], "data.text_column")
    require_columns(table, [label_col], "data.label_columns")
    fmt = format_from_suffix(table.path) or d.format
    rec = TextRecords(table.path, fmt, problems=list(table.problems), columns=table.columns)
    for line, row in table.rows:
        nested = nested_cell(row, d.text_column) or nested_cell(row, label_col)
        if nested:
            column = d.text_column if nested_cell(row, d.text_column) else label_col
            rec.problems.append(
                Problem(str(table.path), f"column '{column}' holds {nested}, not a single value; row skipped", line)
            )
            continue
        text = cell(row, d.text_column)
        if not text:
            rec.problems.append(Problem(str(table.path), f"empty text in column '{d.text_column}'; row skipped", line))
            continue
        label = cell(row, label_col)
        if not label:
            rec.problems.append(Problem(str(table.path), f"no label in column '{label_col}'; row skipped", line))
            continue
        rec.texts.append(text)
        rec.targets.append(parse_number(label, table.path, line, label_col) if kind.is_regression else label)
        rec.lines.append(line)
    return rec


def build_text_data(config: RunConfig, tokenizer: Any) -> DataBundle:
    kind = config.task.kind
    need_tokenizer(tokenizer, kind.value)
    d = config.data
    rec = collect_text(config, kind)
    source = str(rec.source)
    require_nonempty(len(rec.texts), source, "rows")
    classify = kind == TaskKind.TEXT_CLASSIFICATION
    keep = subsample_indices(len(rec.texts), d.max_samples, d.split_seed, rec.targets if classify else None)
    texts = [rec.texts[k] for k in keep]
    targets = [rec.targets[k] for k in keep]
    if classify:
        labels = sorted(set(targets))
        require_two_classes(labels, source)
        index = {name: i for i, name in enumerate(labels)}
        encoded: list[Any] = [index[t] for t in targets]
        tr, va, te = stratified_split_indices(targets, d.val_fraction, d.test_fraction, d.split_seed)
        counts = class_counts([targets[k] for k in tr])
    else:
        labels, counts, encoded = [], {}, [float(t) for t in targets]
        tr, va, te = random_split_indices(len(texts), d.val_fraction, d.test_fraction, d.split_seed)

    ids = tokenizer(texts, truncation=True, max_length=d.max_length, verbose=False)["input_ids"]

    def make(idx: list[int]) -> Dataset:
        return TokenizedDataset([list(ids[k]) for k in idx], [encoded[k] for k in idx])

    return DataBundle(
        train=make(tr),
        val=make(va),
        test=make(te),
        labels=labels,
        problems=rec.problems,
        class_counts=counts,
        collate_fn=PadCollator(pad_id_of(tokenizer), "class" if classify else "regression"),
        source=source,
    )


def scan_text(config: RunConfig, kind: TaskKind, table: Table | None = None) -> ScanReport:
    rec = collect_text(config, kind, table)
    return ScanReport(
        source=str(rec.source),
        format=rec.format,
        suggested_kind=kind,
        num_samples=len(rec.texts),
        labels=class_counts(rec.targets) if kind == TaskKind.TEXT_CLASSIFICATION else {},
        problems=rec.problems,
        columns=rec.columns,
    )
