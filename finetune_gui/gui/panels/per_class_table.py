"""The per-class (or per-label) table of an evaluation: precision, recall, F1 and support, sortable by column."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget


class PerClassTable(QTableWidget):
    """Rows of evaluation.json's per_class / per_label list, in class order until a header is clicked."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, 5, parent)
        self.setObjectName("evaluate-per-class")
        self.setHorizontalHeaderLabels(["Class", "Precision", "Recall", "F1", "Support"])
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, 5):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # class order until a header is clicked
        self.setToolTip("Click a column header to sort by it")

    def set_rows(self, rows: list[dict[str, Any]], first_column: str = "Class") -> None:
        self.setHorizontalHeaderItem(0, QTableWidgetItem(first_column))
        self.setSortingEnabled(False)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            self.setItem(r, 0, QTableWidgetItem(str(row.get("label", r))))
            for c, key in enumerate(("precision", "recall", "f1"), start=1):
                self.setItem(r, c, NumberItem(float(row.get(key, 0.0)), f"{row.get(key, 0.0):.3f}"))
            self.setItem(r, 4, NumberItem(int(row.get("support", 0)), str(row.get("support", 0))))
        self.setSortingEnabled(True)


class NumberItem(QTableWidgetItem):
    """A table cell that shows formatted text and sorts by its number."""

    def __init__(self, value: float, text: str):
        super().__init__(text)
        self.value = value
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        return self.value < other.value if isinstance(other, NumberItem) else super().__lt__(other)
