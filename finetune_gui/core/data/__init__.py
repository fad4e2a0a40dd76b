"""Datasets, splits and the problems found in the data.

`build_data(config, ...)` makes the train/val/test datasets for the configured task;
`scan_data(config)` takes a cheap look (no tokenizer, no model) for the GUI's data page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.data.common import DataBundle, Problem, ScanReport, cell, looks_numeric
from finetune_gui.core.errors import DataError

__all__ = ["DataBundle", "Problem", "ScanReport", "build_data", "scan_data"]


def build_data(
    config: RunConfig,
    *,
    image_size: int | None = None,
    mean: Any = None,
    std: Any = None,
    tokenizer: Any = None,
) -> DataBundle:
    """Train/val/test datasets for config.task.kind (see the sample formats in each module)."""
    kind = config.task.kind
    if kind.is_image:
        from finetune_gui.core.data.images import build_image_data

        return build_image_data(config, image_size=image_size, mean=mean, std=std)
    if kind.is_text:
        from finetune_gui.core.data.text import build_text_data

        return build_text_data(config, tokenizer)
    if kind == TaskKind.CAUSAL_LM:
        from finetune_gui.core.data.lm import build_lm_data

        return build_lm_data(config, tokenizer)
    raise ValueError(f"unknown task kind {kind!r}")


def scan_data(config: RunConfig) -> ScanReport:
    """Format, suggested task, labels with counts, sample count, problems and columns of config.data.path.

    Raises DataError when the data cannot be read at all (missing path, not UTF-8); problems that the
    user can fix on the data page (a missing column, one class only) are listed in the report instead.
    """
    from finetune_gui.core.data.columns import guess_columns
    from finetune_gui.core.data.common import read_table
    from finetune_gui.core.data.fs import walk_files
    from finetune_gui.core.data.image_records import IMAGE_EXTENSIONS, suggest_manifest_kind
    from finetune_gui.core.data.images import scan_images
    from finetune_gui.core.data.lm import scan_lm
    from finetune_gui.core.data.text import data_file, scan_text

    kind = config.task.kind
    path, fmt = data_file(config)
    if fmt == "folder":
        if kind == TaskKind.CAUSAL_LM:
            return scan_lm(config)
        suffixes: set[str] = set()
        for _, names in walk_files(path, lambda *_: None):  # a folder that cannot be read: the reader lists it
            suffixes.update(Path(f).suffix.lower() for f in names)
            if suffixes & IMAGE_EXTENSIONS:
                break
        if not suffixes & IMAGE_EXTENSIONS and ".txt" in suffixes:
            report = scan_lm(config)
            report.suggested_kind = TaskKind.CAUSAL_LM
            return report
        report = scan_images(config, TaskKind.IMAGE_CLASSIFICATION)
        _single_class_note(report)
        return report
    if fmt == "txt":
        report = scan_lm(config)
        report.suggested_kind = TaskKind.CAUSAL_LM
        return report

    table = read_table(path, fmt)
    d = config.data
    rows = [r for _, r in table.rows]
    label_col = d.label_columns[0] if d.label_columns else ""
    try:
        if d.path_column in table.columns:
            suggested = suggest_manifest_kind(config, table.columns, rows)
            report = scan_images(config, kind if kind.is_image else suggested)
        elif d.text_column in table.columns and label_col in table.columns:
            numeric = looks_numeric([cell(r, label_col) for r in rows])
            suggested = TaskKind.TEXT_REGRESSION if numeric else TaskKind.TEXT_CLASSIFICATION
            report = scan_text(config, kind if kind.is_text else suggested, table)
        elif d.text_column in table.columns:
            suggested = TaskKind.CAUSAL_LM
            report = scan_lm(config)
        elif guess := guess_columns(table.columns, rows):  # the names differ: scan as the contents suggest
            guessed = config.model_copy(deep=True).with_base_dir(config.base_dir)
            for key, value in guess.items():
                setattr(guessed.data, key, value)
            report = scan_data(guessed)
            report.suggested_columns = guess
            return report
        else:
            have = ", ".join(repr(c) for c in table.columns) or "(none)"
            raise DataError(
                f"{path}: neither an image column '{d.path_column}' nor a text column '{d.text_column}' found; "
                f"the file has columns {have}. Set data.path_column (images) or data.text_column (text)."
            )
    except DataError as e:
        return ScanReport(
            source=str(path),
            format=fmt,
            suggested_kind=None,
            num_samples=0,
            problems=[*table.problems, Problem(str(path), str(e))],
            columns=table.columns,
        )
    report.suggested_kind = suggested
    report.columns = table.columns
    _single_class_note(report)
    return report


def _single_class_note(report: ScanReport) -> None:
    kind = report.suggested_kind
    if kind is not None and kind.is_classification and report.num_samples and len(report.labels) < 2:
        report.problems.append(
            Problem(
                report.source,
                f"classification needs at least two classes; found {len(report.labels)}. Add data for another class.",
            )
        )
