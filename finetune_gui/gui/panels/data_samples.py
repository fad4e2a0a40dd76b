"""The Samples tab of the data page: a few thumbnails per class for images, the first rows of a table (or the
first documents) for text. Both are read in a worker; a late answer for an older scan is dropped."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from finetune_gui.config import TaskKind
from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.widgets.image_grid import ImageGrid, rgb_of
from finetune_gui.gui.wording import reword

THUMBS_PER_CLASS = 6
THUMB_CLASSES = 12
THUMB_SIDE = 88
PREVIEW_ROWS = 50


def thumbnail_job(
    config, kind: TaskKind, per_class: int = THUMBS_PER_CLASS, max_classes: int = THUMB_CLASSES, side: int = THUMB_SIDE
) -> tuple[list, str]:
    """A few decoded, shrunk images per class (or across the value range for regression) as RGB bytes."""
    from finetune_gui.core.data.image_files import load_rgb
    from finetune_gui.core.data.image_records import collect_images

    rec = collect_images(config, kind, verify=False)
    groups: dict[str, list[tuple[str, str]]] = {}
    if kind == TaskKind.IMAGE_REGRESSION:  # three rows across the range of values, lowest first
        ranked = sorted(zip(rec.paths, rec.targets), key=lambda pt: pt[1])
        wanted = min(len(ranked), per_class * 3)
        spread = [ranked[round(i * (len(ranked) - 1) / max(1, wanted - 1))] for i in range(wanted)]
        for k in range(0, wanted, per_class):
            chunk = spread[k : k + per_class]
            groups[f"{k // per_class + 1}. values {chunk[0][1]:g} – {chunk[-1][1]:g}"] = [
                (p, f"{t:g}") for p, t in chunk
            ]
    else:
        for path, target in zip(rec.paths, rec.targets):
            for name in target if isinstance(target, list) else [target]:
                groups.setdefault(str(name), []).append((path, Path(path).name))
    note = f"showing {max_classes} of {len(groups)} classes" if len(groups) > max_classes else ""
    rows = []
    for name in sorted(groups)[:max_classes]:
        members = groups[name]
        step = max(1, len(members) // per_class)
        cells = []
        for path, caption in members[::step][: per_class * 2]:
            try:
                cells.append((rgb_of(load_rgb(path), side), caption))
            except Exception:  # noqa: BLE001 - an unreadable file is listed among the problems already
                continue
            if len(cells) == per_class:
                break
        rows.append((name, cells))
    return rows, note


def first_rows_job(config, limit: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    """Column names and the first rows of a table, or the first documents of text files."""
    from finetune_gui.core.data.common import cell, read_table
    from finetune_gui.core.data.lm import collect_documents
    from finetune_gui.core.data.text import data_file

    path, fmt = data_file(config)
    if fmt in ("csv", "tsv", "jsonl"):
        table = read_table(path, fmt)
        rows = [[cell(row, c)[:300] for c in table.columns] for _, row in table.rows[:limit]]
        return table.columns, rows
    docs = collect_documents(config).docs
    return ["text"], [[doc[:300]] for doc in docs[:limit]]


class SamplesPreview(QWidget):
    """Thumbnails (image data) or a table of first rows (text data) of the scanned data."""

    error = Signal(str, str, str)  # error type, message, details: only for failures that look like bugs

    def __init__(self, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self._gen = 0
        layout = QVBoxLayout(self)
        self.thumbnails = ImageGrid(THUMB_SIDE, caption_width=90)
        self.thumbnails.setObjectName("thumbnails")
        self.rows_table = QTableWidget()
        self.rows_table.setObjectName("firstRows")
        self.rows_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rows_table.setWordWrap(False)
        layout.addWidget(self.thumbnails)
        layout.addWidget(self.rows_table)

    def drop_pending(self) -> None:
        """An answer still on its way is for older data: drop it when it comes."""
        self._gen += 1

    def clear(self) -> None:
        """Nothing to show; an answer still on its way is dropped."""
        self._gen += 1
        self.thumbnails.clear()
        self.thumbnails.set_message("")
        self.rows_table.clear()
        self.rows_table.setRowCount(0)
        self.rows_table.setColumnCount(0)

    def load(self, report, kind: TaskKind, config) -> None:
        """Read the samples of `report`'s data as `kind` shows them; `config` is a snapshot for the worker."""
        self._gen += 1
        gen = self._gen
        self.thumbnails.setVisible(kind.is_image)
        self.rows_table.setVisible(not kind.is_image)
        if not report.num_samples:
            self.thumbnails.clear()
            self.thumbnails.set_message("No usable samples.")
            return
        if kind.is_image:
            self.thumbnails.set_message("Loading thumbnails…")
            job, args, done = thumbnail_job, (config, kind), self._thumbnails_done
        else:
            job, args, done = first_rows_job, (config,), partial(self._rows_done, text_column=config.data.text_column)
        self.bridge.run_task(job, *args, on_result=partial(done, gen), on_error=partial(self._failed, gen))

    def _thumbnails_done(self, gen: int, result) -> None:
        if gen != self._gen:
            return
        rows, note = result
        self.thumbnails.set_rows(rows)
        self.thumbnails.set_message(note)

    def _rows_done(self, gen: int, result, text_column: str = "") -> None:
        if gen != self._gen:
            return
        columns, rows = result
        self.rows_table.clear()
        self.rows_table.setColumnCount(len(columns))
        self.rows_table.setHorizontalHeaderLabels(columns)
        self.rows_table.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, text in enumerate(values):
                item = QTableWidgetItem(text.replace("\n", " ⏎ "))
                item.setToolTip(text)
                self.rows_table.setItem(r, c, item)
        header = self.rows_table.horizontalHeader()
        for c, name in enumerate(columns):
            wide = name == text_column or len(columns) == 1
            header.setSectionResizeMode(
                c, QHeaderView.ResizeMode.Stretch if wide else QHeaderView.ResizeMode.ResizeToContents
            )

    def _failed(self, gen: int, error_type: str, message: str, details: str) -> None:
        if gen != self._gen:
            return
        self.thumbnails.set_message(f"Samples could not be shown: {reword(message, self)}")
        if not is_expected(error_type):
            self.error.emit(error_type, message, details)
