"""The data page's column mapping: which column of a table holds the text, the image path and the label(s).
Shown only for tables; the choices edit config.data through `state`."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QListWidget, QListWidgetItem, QWidget

from finetune_gui.config import field_info


class ColumnMapping(QGroupBox):
    """The "Columns" box; `show_for(report)` fills it from a scan report's columns and the config."""

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__("Columns", parent)
        self.state = state
        self.setObjectName("columnMapping")
        self._loading = False
        self._shown: tuple | None = None
        form = QFormLayout(self)
        self.text_column = QComboBox()
        self.text_column.setObjectName("textColumn")
        self.text_column.activated.connect(lambda _: self._column_chosen("text_column", self.text_column))
        self.path_column = QComboBox()
        self.path_column.setObjectName("pathColumn")
        self.path_column.activated.connect(lambda _: self._column_chosen("path_column", self.path_column))
        self.label_columns = QListWidget()
        self.label_columns.setObjectName("labelColumns")
        self.label_columns.setMaximumHeight(96)
        self.label_columns.itemChanged.connect(self._label_columns_changed)
        for editor, key in (
            (self.text_column, "text_column"),
            (self.path_column, "path_column"),
            (self.label_columns, "label_columns"),
        ):
            editor.setToolTip(field_info("data", key)[0])
        form.addRow("Text column", self.text_column)
        form.addRow("Image path column", self.path_column)
        form.addRow("Label column(s)", self.label_columns)
        self.hide()

    def show_for(self, report) -> None:
        """Show the rows the task needs (all of them when nothing was recognised) and fill them."""
        kind = self.state.config.task.kind
        columns = report.columns if report is not None else []
        self.setVisible(bool(columns))
        unknown = report is None or report.suggested_kind is None  # nothing recognised: offer every row
        form: QFormLayout = self.layout()
        form.setRowVisible(self.text_column, unknown or not kind.is_image)
        form.setRowVisible(self.path_column, unknown or kind.is_image)
        form.setRowVisible(self.label_columns, True)  # picking a label also turns an LM table into a labelled one
        self._loading = True
        try:
            self._fill(columns)
        finally:
            self._loading = False

    def _fill(self, columns: list[str]) -> None:
        d = self.state.config.data
        shown = (tuple(columns), d.text_column, d.path_column, tuple(d.label_columns))
        if shown == self._shown:
            return
        self._shown = shown
        for combo, current in ((self.text_column, d.text_column), (self.path_column, d.path_column)):
            combo.clear()
            for c in columns:
                combo.addItem(c, c)
            if current not in columns:
                combo.insertItem(0, f"{current}  (not in the file)", None)
            combo.setCurrentIndex(max(0, combo.findData(current)) if current in columns else 0)
        self.label_columns.clear()
        ordered = [c for c in d.label_columns if c in columns] + [c for c in columns if c not in d.label_columns]
        for c in ordered:
            item = QListWidgetItem(c)
            item.setData(Qt.ItemDataRole.UserRole, c)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if c in d.label_columns else Qt.CheckState.Unchecked)
            self.label_columns.addItem(item)
        for missing in (c for c in d.label_columns if c not in columns):
            item = QListWidgetItem(f"{missing}  (not in the file)")
            item.setData(Qt.ItemDataRole.UserRole, missing)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.label_columns.insertItem(0, item)

    def _column_chosen(self, key: str, combo: QComboBox) -> None:
        value = combo.currentData()
        if value and value != self.state.get_value("data", key):
            # after the signal returns: the change refills this combo
            QTimer.singleShot(0, lambda: self.state.set_value("data", key, value))

    def _label_columns_changed(self, _item: QListWidgetItem) -> None:
        if not self._loading:
            QTimer.singleShot(0, self._commit_label_columns)  # after the signal returns: the list is refilled

    def _commit_label_columns(self) -> None:
        chosen = [
            self.label_columns.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.label_columns.count())
            if self.label_columns.item(i).checkState() == Qt.CheckState.Checked
        ]
        if chosen != list(self.state.config.data.label_columns):
            self.state.set_value("data", "label_columns", chosen)
