"""The Runs page's table: one row per run summary (core/run_index.py), sortable by any column (numbers as numbers,
a value a run lacks last) and filtered by a search text over every column."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor

from finetune_gui.gui.pages.monitor import format_duration

#: (header, what the column sorts by) in order
COLUMNS = (
    ("Name", "name"),
    ("Status", "status"),
    ("Task", "task"),
    ("Model", "model"),
    ("Best validation", "best_value"),
    ("Test", "test_value"),
    ("Epochs", "epochs"),
    ("Duration", "duration_s"),
    ("Date", "date"),
    ("Findings", "findings"),
)
NUMERIC = {"best_value", "test_value", "epochs", "duration_s"}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
PATH_ROLE = Qt.ItemDataRole.UserRole + 2
STATUS_COLOURS = {"failed": "#d62728", "diverged": "#d62728", "running": "#1f77b4", "stopped": "#b8860b"}
CSV_FIELDS = (
    "name",
    "status",
    "task",
    "model",
    "best_metric",
    "best_value",
    "best_epoch",
    "test_metric",
    "test_value",
    "epochs",
    "duration_s",
    "date",
    "path",
)


def cell_text(run, key: str) -> str:
    if key == "best_value":
        return "–" if run.best_value is None else f"{run.best_metric} {run.best_value:.4g}"
    if key == "test_value":
        return "–" if run.test_value is None else f"{run.test_metric.removeprefix('test_')} {run.test_value:.4g}"
    if key == "duration_s":
        return "–" if run.duration_s is None else format_duration(run.duration_s)
    if key == "date":
        return run.date[:16]
    if key == "findings":
        return run.findings_text
    return str(getattr(run, key))


def sort_value(run, key: str) -> Any:
    """What a column sorts by: the number itself for numeric columns (a missing one after every number)."""
    if key in NUMERIC:
        value = getattr(run, key)
        return math.inf if value is None else float(value)
    if key == "findings":  # the most serious first when sorted descending
        counts = run.findings or {}
        return (counts.get("critical", 0) * 10_000 + counts.get("warning", 0) * 100 + counts.get("info", 0)) or -1
    return cell_text(run, key).lower()


class RunTableModel(QAbstractTableModel):
    """The run summaries as table rows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list = []

    def set_runs(self, runs: list) -> None:
        self.beginResetModel()
        self.runs = list(runs)
        self.endResetModel()

    def remove_paths(self, paths: set[str]) -> None:
        """Drop the rows of these run folders (deleted ones)."""
        for row in reversed(range(len(self.runs))):
            if self.runs[row].path in paths:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.runs[row]
                self.endRemoveRows()

    def rowCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.runs)

    def columnCount(self, parent=None) -> int:
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole and section == 4:
            return "The best value of the metric each run picked its best epoch by (early stopping's metric)"
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        run, key = self.runs[index.row()], COLUMNS[index.column()][1]
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(run, key)
        if role == SORT_ROLE:
            return sort_value(run, key)
        if role == PATH_ROLE:
            return run.path
        if role == Qt.ItemDataRole.TextAlignmentRole and key in NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "status" and run.status in STATUS_COLOURS:
                return QColor(STATUS_COLOURS[run.status])
            if key == "findings" and run.findings and (run.findings.get("critical") or run.findings.get("warning")):
                return QColor("#b8860b" if not run.findings.get("critical") else "#d62728")
        if role == Qt.ItemDataRole.ToolTipRole:
            return _tooltip(run, key)
        return None


def _tooltip(run, key: str) -> str:
    if key == "name":
        return "\n".join([run.path, *run.notes])
    if key == "best_value" and run.best_epoch is not None:
        return f"{run.best_metric} at epoch {run.best_epoch}"
    if key == "status" and run.resumable:
        return "Can be resumed from its newest checkpoint"
    if key == "findings" and run.findings is None:
        return "Not diagnosed: the run has no diagnostics.json (made before diagnostics, or damaged)"
    return ""


class RunFilter(QSortFilterProxyModel):
    """Sorts by SORT_ROLE; keeps the rows where every word of the search text is in some column."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.words: list[str] = []

    def set_text(self, text: str) -> None:
        modern = hasattr(self, "beginFilterChange")  # Qt >= 6.10, where invalidateFilter is deprecated
        if modern:
            self.beginFilterChange()
        self.words = text.lower().split()
        if modern:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:
        if not self.words:
            return True
        model = self.sourceModel()
        text = " ".join(str(model.index(row, c, parent).data()).lower() for c in range(model.columnCount()))
        return all(word in text for word in self.words)

    def paths(self, rows: list[int] | None = None) -> list[str]:
        """The run folders of these proxy rows (all shown rows, in the order shown, by default)."""
        rows = range(self.rowCount()) if rows is None else rows
        return [self.index(r, 0).data(PATH_ROLE) for r in rows]


def table_csv(proxy: RunFilter) -> str:
    """The rows shown, in the order shown, as CSV with plain values (numbers unformatted, seconds, full paths)."""
    by_path = {r.path: r for r in proxy.sourceModel().runs}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_FIELDS, "findings"])
    for path in proxy.paths():
        run = by_path[path]
        writer.writerow([_csv_value(getattr(run, f)) for f in CSV_FIELDS] + [run.findings_text])
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    return "" if value is None else value
