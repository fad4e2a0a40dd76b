"""What the diagnoses look like: a banner that says the worst finding as soon as it appears, and a panel with one
card per finding (what, since when, the numbers, why, and each remedy as "Apply to a new run"). Applying shows
the config changes first; accepted, they become the setup of a new run, ready to start.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLOURS = {"info": "#2a6fb0", "warning": "#b7791f", "critical": "#c0392b"}
MARKS = {"info": "ℹ", "warning": "⚠", "critical": "✖"}
REMEDY_COLUMNS = 3


def _when(finding: dict[str, Any]) -> str:
    if finding.get("began_epoch"):
        return f"from epoch {finding['began_epoch']}"
    if finding.get("began_step"):
        return f"from step {finding['began_step']}"
    return ""


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class DiagnosisBanner(QFrame):
    """One line for the worst warning or critical finding; `show_all` asks for the panel."""

    show_all = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("diagnosisBanner")
        self.label = QLabel()
        self.label.setWordWrap(True)
        button = QPushButton("Show the diagnosis")
        button.setObjectName("showDiagnosis")
        button.clicked.connect(self.show_all)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.label, 1)
        row.addWidget(button)
        self.hide()

    def set_findings(self, findings: list[dict[str, Any]]) -> None:
        serious = [f for f in findings if f["severity"] in ("warning", "critical")]
        if not serious:
            self.hide()
            return
        worst = serious[0]  # findings come worst first
        colour = COLOURS[worst["severity"]]
        more = f" (and {len(serious) - 1} more)" if len(serious) > 1 else ""
        self.setStyleSheet(f"#diagnosisBanner {{ border: 1px solid {colour}; border-radius: 4px; }}")
        self.label.setText(
            f"<span style='color:{colour}'><b>{MARKS[worst['severity']]} {html.escape(worst['title'])}</b></span>"
            f" {html.escape(_when(worst))}{more}"
        )
        self.show()


class FindingCard(QFrame):
    """One finding: title, when, the numbers, the explanation and a button per remedy."""

    def __init__(self, finding: dict[str, Any], apply, parent: QWidget | None = None):
        super().__init__(parent)
        self.finding = finding
        colour = COLOURS.get(finding["severity"], "#666666")
        self.setObjectName(f"finding-{finding['id']}")
        self.setStyleSheet(f"#finding-{finding['id']} {{ border-left: 4px solid {colour}; }}")
        title = QLabel(
            f"<span style='color:{colour}'><b>{MARKS.get(finding['severity'], '')} "
            f"{html.escape(finding['title'])}</b></span> <i>{html.escape(_when(finding))}</i>"
        )
        explanation = QLabel(html.escape(finding["explanation"]))
        explanation.setWordWrap(True)
        explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(title)
        layout.addWidget(explanation)
        evidence = finding.get("evidence") or {}
        if evidence:
            numbers = QLabel(" · ".join(f"{k.replace('_', ' ')} {_number(v)}" for k, v in evidence.items()))
            numbers.setWordWrap(True)
            numbers.setStyleSheet("color: palette(dark);")
            layout.addWidget(numbers)
        remedies = finding.get("remedies") or []
        self.remedy_buttons = []
        if remedies:
            layout.addWidget(QLabel("Apply to a new run (shows the changes first):"))
            grid = QGridLayout()  # rows of buttons, so a card never grows wider than the panel
            for i, remedy in enumerate(remedies):
                b = QPushButton(remedy["label"])
                b.setObjectName("applyRemedy")
                b.setToolTip(", ".join(f"{k} = {v}" for k, v in remedy["changes"].items()))
                b.clicked.connect(lambda _=False, r=remedy: apply(r))
                grid.addWidget(b, i // REMEDY_COLUMNS, i % REMEDY_COLUMNS)
                self.remedy_buttons.append(b)
            grid.setColumnStretch(REMEDY_COLUMNS, 1)
            layout.addLayout(grid)


class DiagnosisPanel(QScrollArea):
    """Cards for every finding, worst first. `apply` carries a remedy (its label and changes) to apply."""

    apply = Signal(dict)

    def __init__(self, empty_text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("diagnosisPanel")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # text wraps instead
        self._empty_text = empty_text
        self.findings: list[dict[str, Any]] = []
        self.set_findings([])

    def set_findings(self, findings: list[dict[str, Any]], empty_text: str | None = None) -> None:
        self.findings = list(findings)
        host = QWidget()
        layout = QVBoxLayout(host)
        if not findings:
            note = QLabel(empty_text or self._empty_text)
            note.setObjectName("diagnosisEmpty")
            note.setWordWrap(True)
            note.setStyleSheet("color: palette(dark);")
            layout.addWidget(note)
        for f in findings:
            layout.addWidget(FindingCard(f, self.apply.emit))
        layout.addStretch(1)
        self.setWidget(host)

    def cards(self) -> list[FindingCard]:
        return self.widget().findChildren(FindingCard)


class RemedyDialog(QDialog):
    """The config changes a remedy makes, as a table, before they become the new run's setup."""

    def __init__(self, label: str, diff: list[tuple[str, Any, Any]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("remedyDialog")
        self.setWindowTitle("Apply to a new run")
        intro = QLabel(f"<b>{html.escape(label)}</b><br>A new run starts from the last one's setup with these changes:")
        intro.setWordWrap(True)
        self.table = QTableWidget(len(diff), 3)
        self.table.setHorizontalHeaderLabels(["Setting", "Now", "New run"])
        for r, (key, old, new) in enumerate(diff):
            for c, value in enumerate((key, old, new)):
                self.table.setItem(r, c, QTableWidgetItem(str(value)))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        ok = buttons.addButton("Prepare the new run", QDialogButtonBox.ButtonRole.AcceptRole)
        ok.setObjectName("prepareRun")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(560, 260)


def offer_remedy(parent: QWidget, state, remedy: dict[str, Any]) -> RemedyDialog | None:
    """Show what `remedy` changes in the setup of the run on show (or the current setup); accepted, that
    becomes the current setup, ready to start. Returns the dialog (open, not modal), or None when refused."""
    from finetune_gui.config import ConfigError, load_config
    from finetune_gui.core.diagnostics.findings import Remedy
    from finetune_gui.core.diagnostics.remedies import apply_remedy, config_diff

    base = state.config
    run_config = state.run_dir / "config.toml" if state.run_dir is not None else None
    try:
        if run_config is not None and run_config.is_file():
            base = load_config(run_config)
        new = apply_remedy(base, Remedy(remedy["label"], remedy["changes"]))
    except (ConfigError, OSError) as e:
        state.notice.emit(f"This remedy cannot be applied: {e}")
        return None
    dialog = RemedyDialog(remedy["label"], config_diff(base, new), parent)

    def prepare() -> None:
        state.set_config(new)
        state.notice.emit(f"A new run is prepared ({remedy['label']}); press Start training to train it.")

    dialog.accepted.connect(prepare)
    dialog.open()
    return dialog
