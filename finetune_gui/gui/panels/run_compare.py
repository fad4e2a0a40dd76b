"""The Runs page's comparison of the selected runs: their curves (left), and in tabs on the right their config
differences and their diagnoses side by side. Each run's column is headed by its name in its curve's colour."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.run_compare import config_rows, findings_rows
from finetune_gui.gui.widgets.run_curves import RunCurves, short_names

SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#b8860b", "info": "#1f77b4"}


class ComparePanel(QWidget):
    """Shows a hint until `set_runs` gets runs; then their curves, config table and findings table."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.histories: list = []
        self.colours: dict[str, str] = {}
        self.hint = QLabel()
        self.hint.setObjectName("compareHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(dark); border: 1px dashed palette(mid); border-radius: 4px;")
        self.curves = RunCurves()
        self.config_table = _table("compareConfig")
        self.differences_only = QCheckBox("Differences only")
        self.differences_only.setObjectName("compareDifferencesOnly")
        self.differences_only.setChecked(True)
        self.differences_only.toggled.connect(self._fill_config)
        self.config_note = QLabel()
        self.config_note.setWordWrap(True)
        config_tab = QWidget()
        config_layout = QVBoxLayout(config_tab)
        config_layout.addWidget(self.differences_only)
        config_layout.addWidget(self.config_note)
        config_layout.addWidget(self.config_table, 1)
        self.findings_table = _table("compareFindings")
        self.findings_note = QLabel()
        self.findings_note.setWordWrap(True)
        findings_tab = QWidget()
        findings_layout = QVBoxLayout(findings_tab)
        findings_layout.addWidget(self.findings_note)
        findings_layout.addWidget(self.findings_table, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(config_tab, "Config")
        self.tabs.addTab(findings_tab, "Diagnoses")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.curves)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 460])
        self.stack = QStackedWidget()
        self.stack.addWidget(self.hint)
        self.stack.addWidget(split)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)

    def show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.stack.setCurrentWidget(self.hint)

    def set_runs(self, histories: list, colours: dict[str, str]) -> None:
        """Compare these runs (RunHistory, in the order given), each in its colour (by run path)."""
        self.histories, self.colours = histories, colours
        self.curves.set_runs(histories, colours)
        self._fill_config()
        self._fill_findings()
        self.stack.setCurrentIndex(1)

    # ------------------------------------------------------------ tables

    def _run_columns(self, table: QTableWidget, first: str) -> None:
        table.clear()
        table.setColumnCount(1 + len(self.histories))
        table.setHorizontalHeaderItem(0, QTableWidgetItem(first))
        names = short_names([h.name for h in self.histories])
        for c, (h, name) in enumerate(zip(self.histories, names), start=1):
            item = QTableWidgetItem(name)
            item.setForeground(QColor(self.colours.get(h.summary.path, "#000000")))
            item.setToolTip(h.summary.path)
            table.setHorizontalHeaderItem(c, item)

    def _fill_config(self) -> None:
        only = self.differences_only.isChecked()
        rows = config_rows(self.histories, differences_only=only) if self.histories else []
        self._run_columns(self.config_table, "Setting")
        self.config_table.setRowCount(len(rows))
        for r, (key, values) in enumerate(rows):
            self.config_table.setItem(r, 0, QTableWidgetItem(key))
            differ = len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1
            for c, value in enumerate(values, start=1):
                item = QTableWidgetItem(_text(value))
                item.setToolTip(_text(value))
                if differ and not only:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.config_table.setItem(r, c, item)
        if len(self.histories) < 2:
            note = "Select another run to see how the setups differ."
        elif only and not rows:
            note = "The runs were set up alike."
        else:
            note = "" if only else "Values that differ are in bold."
        self.config_note.setText(note)
        self.config_note.setVisible(bool(note))

    def _fill_findings(self) -> None:
        rows = findings_rows(self.histories)
        by_run = [{f.id: f for f in h.findings or []} for h in self.histories]
        self._run_columns(self.findings_table, "Finding")
        self.findings_table.setRowCount(len(rows))
        for r, (fid, title, severities) in enumerate(rows):
            self.findings_table.setItem(r, 0, QTableWidgetItem(title))
            for c, (severity, found) in enumerate(zip(severities, by_run), start=1):
                item = QTableWidgetItem(severity or "–")
                if severity:
                    item.setForeground(QColor(SEVERITY_COLOURS.get(severity, "#000000")))
                    item.setToolTip(f"{found[fid].line()}\n\n{found[fid].explanation}")
                self.findings_table.setItem(r, c, item)
        undiagnosed = [h.name for h in self.histories if h.findings is None]
        notes = [] if rows else ["No findings: the checks found nothing wrong in these runs."]
        if undiagnosed:
            notes.append("Not diagnosed (no diagnostics.json): " + ", ".join(undiagnosed))
        self.findings_note.setText("\n".join(notes))
        self.findings_note.setVisible(bool(notes))


def _table(name: str) -> QTableWidget:
    table = QTableWidget()
    table.setObjectName(name)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)
