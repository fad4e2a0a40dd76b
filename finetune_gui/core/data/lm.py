"""Causal language-model data: documents → tokens + eos → one stream → fixed-length blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from finetune_gui.config import RunConfig
from finetune_gui.core.data.common import (
    DataBundle,
    PadCollator,
    Problem,
    ScanReport,
    cell,
    need_tokenizer,
    nested_cell,
    pad_id_of,
    random_split_indices,
    read_table,
    read_text,
    require_columns,
    require_nonempty,
    subsample_indices,
)
from finetune_gui.core.data.fs import UnreadableFile, walk_files
from finetune_gui.core.data.text import data_file
from finetune_gui.core.errors import DataError

#: A last, shorter block is kept when it has at least this many tokens.
MIN_LAST_BLOCK = 8


class BlockDataset(Dataset):
    """Blocks of one token stream; the stream is a numpy array (picklable, no file handles)."""

    def __init__(self, stream: np.ndarray, spans: list[tuple[int, int]]):
        self.stream = stream
        self.spans = spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a, b = self.spans[i]
        ids = torch.from_numpy(self.stream[a:b].copy())
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


@dataclass
class Documents:
    source: Path
    format: str
    docs: list[str] = field(default_factory=list)
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def split_documents(text: str) -> list[str]:
    """Documents of a text separated by blank lines or lines holding only '%' (fortune format)."""
    docs: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() in ("", "%"):
            if current:
                docs.append("\n".join(current))
                current = []
        else:
            current.append(line.rstrip())
    if current:
        docs.append("\n".join(current))
    return docs


def _text_files(folder: Path, problems: list[Problem]) -> list[Path]:
    def failed(where: str, reason: str) -> None:
        problems.append(Problem(where, f"{reason}; skipped"))

    return [d / f for d, names in walk_files(folder, failed) for f in names if f.lower().endswith(".txt")]


def collect_documents(config: RunConfig) -> Documents:
    d = config.data
    path, fmt = data_file(config)
    if fmt in ("folder", "txt"):
        problems: list[Problem] = []
        files = _text_files(path, problems) if path.is_dir() else [path]
        if not files:
            raise DataError(f"{path}: no .txt files found in this folder; add some or choose a .txt/.jsonl file")
        out = Documents(path, "txt", files=len(files), problems=problems)
        for f in files:
            try:
                docs = split_documents(read_text(f))
            except UnreadableFile as e:
                if len(files) == 1:  # the one file of the data: nothing to skip to
                    raise
                out.problems.append(Problem(str(f), f"{e.reason}; skipped"))
                continue
            if not docs:
                out.problems.append(Problem(str(f), "no text in this file"))
            out.docs += docs
        return out
    if fmt in ("jsonl", "csv", "tsv"):
        table = read_table(path, fmt)
        require_columns(table, [d.text_column], "data.text_column")
        out = Documents(path, fmt, files=1, problems=list(table.problems), columns=table.columns)
        for line, row in table.rows:
            nested = nested_cell(row, d.text_column)
            if nested:
                out.problems.append(
                    Problem(str(path), f"column '{d.text_column}' holds {nested}, not text; row skipped", line)
                )
                continue
            text = cell(row, d.text_column)
            if not text:
                out.problems.append(Problem(str(path), f"empty text in column '{d.text_column}'; row skipped", line))
                continue
            out.docs.append(text)
        return out
    raise DataError(
        f"{path}: language-model data must be .txt file(s) or a JSONL file with a '{d.text_column}' field, not '{fmt}'"
    )


def build_lm_data(config: RunConfig, tokenizer: Any) -> DataBundle:
    need_tokenizer(tokenizer, "causal-lm")
    d = config.data
    docs = collect_documents(config)
    source = str(docs.source)
    problems = list(docs.problems)
    require_nonempty(len(docs.docs), source, "text")
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        eos = getattr(tokenizer, "sep_token_id", None)
    if eos is None:
        problems.append(Problem(source, "the tokenizer has no end-of-text token; documents run into each other"))

    ids = tokenizer(docs.docs, add_special_tokens=False, verbose=False)["input_ids"]
    total = sum(len(x) for x in ids) + (len(ids) if eos is not None else 0)
    stream = np.empty(total, dtype=np.int64)
    pos = 0
    for x in ids:
        stream[pos : pos + len(x)] = x
        pos += len(x)
        if eos is not None:
            stream[pos] = eos
            pos += 1
    block = d.max_length
    spans = [(a, min(a + block, total)) for a in range(0, total, block)]
    if spans and spans[-1][1] - spans[-1][0] < min(MIN_LAST_BLOCK, block):
        spans.pop()
    if not spans:
        raise DataError(f"{source}: only {total} tokens of text, fewer than {MIN_LAST_BLOCK}; add more text")
    keep = subsample_indices(len(spans), d.max_samples, d.split_seed)
    spans = [spans[k] for k in keep]
    tr, va, te = random_split_indices(len(spans), d.val_fraction, d.test_fraction, d.split_seed)

    def make(idx: list[int]) -> Dataset:
        return BlockDataset(stream, [spans[k] for k in idx])

    return DataBundle(
        train=make(tr),
        val=make(va),
        test=make(te),
        labels=[],
        problems=problems,
        class_counts={},
        collate_fn=PadCollator(pad_id_of(tokenizer), "lm"),
        source=source,
    )


def scan_lm(config: RunConfig) -> ScanReport:
    docs = collect_documents(config)
    return ScanReport(
        source=str(docs.source),
        format=docs.format,
        suggested_kind=config.task.kind,
        num_samples=len(docs.docs),
        problems=docs.problems,
        columns=docs.columns,
    )
