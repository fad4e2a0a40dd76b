"""The data page's scan results: a summary line, a warning when the data does not look fit to train on, an
imbalance warning, and tabs with the classes (table and bar chart), the samples, and the problems the scan found
(errors and warnings, with what to do, in the words of the window's fields).

The judgements (core.data.verdict) are imported when a report arrives: the engine's data package loads torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import TaskKind
from finetune_gui.gui.panels.data_samples import SamplesPreview
from finetune_gui.gui.widgets.bar_chart import BarChart
from finetune_gui.gui.wording import rewording

FORMAT_LABELS = {
    "folder": "image folder, one subfolder per class",
    "folder-splits": "image folder with train/val/test folders",
    "csv": "CSV table",
    "tsv": "TSV table",
    "jsonl": "JSON lines",
    "txt": "plain text",
}
IMBALANCE_RATIO = 3.0
_ERROR_WORDS = (
    "skipped",
    "not a readable",
    "empty file",
    "too large",
    "cannot be read",
    "not found",
    "at least two classes",
    "neither",
    "not valid",
    "not a number",
    "not a finite",
)


# ---------------------------------------------------------------- plain helpers (no Qt)


def modality(kind: TaskKind | None) -> str:
    if kind is None:
        return ""
    return "image" if kind.is_image else "text" if kind.is_text else "lm"


def effective_kind(chosen: TaskKind, suggested: TaskKind | None) -> TaskKind:
    """The task the data is shown as: the chosen one if it fits this kind of data, else the detected one."""
    return chosen if suggested is None or modality(chosen) == modality(suggested) else suggested


def problem_severity(problem: Any) -> str:
    """'error' for samples left out or data that cannot train, 'warning' for things merely ignored or odd."""
    reason = problem.reason.lower()
    return "error" if any(w in reason for w in _ERROR_WORDS) else "warning"


def imbalance(counts: dict[str, int], ratio: float = IMBALANCE_RATIO) -> tuple[str, str, list[str]] | None:
    """(largest class, smallest class, every class at most largest/ratio) when largest/smallest ≥ ratio."""
    present = {k: v for k, v in counts.items() if v > 0}
    if len(present) < 2:
        return None
    big = max(present, key=present.get)
    small = min(present, key=present.get)
    if present[big] < ratio * present[small]:
        return None
    return big, small, [k for k, v in present.items() if v * ratio <= present[big]]


def errors_caption(report) -> str:
    """What the errors mean for this report: samples left out while the rest can train, or why it cannot."""
    from finetune_gui.core.data.verdict import cannot_train, unit

    blocker = cannot_train(report)
    if blocker is not None:
        return f"Training cannot start because {blocker}."
    errors = sum(problem_severity(p) == "error" for p in report.problems)
    left_out = f"1 {unit(report)[:-1]} is" if errors == 1 else f"{errors:,} {unit(report)} are"
    return f"{left_out} left out; training can start with the other {report.num_samples:,}."


def html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")


# ---------------------------------------------------------------- the panel


class ScanResults(QWidget):
    """What a scan found, shown as the chosen task reads it. "Use balanced class weights" edits `state`."""

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self._source: Path | None = None
        self.doubt = None  # a core.data.verdict.Doubt about the report shown
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 0, 0, 0)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("dataSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.linkActivated.connect(lambda _: self.tabs.setCurrentWidget(self.problems_tab))
        column.addWidget(self.summary_label)
        column.addWidget(self._build_doubt_banner())

        warn_row = QHBoxLayout()
        self.imbalance_label = QLabel()
        self.imbalance_label.setObjectName("imbalanceWarning")
        self.imbalance_label.setWordWrap(True)
        self.imbalance_label.setStyleSheet("color: #b9770e;")
        warn_row.addWidget(self.imbalance_label, 1)
        self.balanced_button = QPushButton("Use balanced class weights")
        self.balanced_button.setObjectName("useBalancedWeights")
        self.balanced_button.setToolTip("Set train.class_weights = balanced: rare classes count more in the loss.")
        self.balanced_button.clicked.connect(lambda: self.state.set_value("train", "class_weights", "balanced"))
        warn_row.addWidget(self.balanced_button)
        self.imbalance_label.hide()
        self.balanced_button.hide()
        column.addLayout(warn_row)

        self.samples = SamplesPreview(bridge)
        self.thumbnails = self.samples.thumbnails
        self.tabs = QTabWidget()
        self.tabs.setObjectName("dataTabs")
        self.tabs.addTab(self._build_classes_tab(), "Classes")
        self.samples_tab = self.samples
        self.tabs.addTab(self.samples_tab, "Samples")
        self.problems_tab = self._build_problems_tab()
        self.tabs.addTab(self.problems_tab, "Problems")
        column.addWidget(self.tabs, 1)

    def _build_doubt_banner(self) -> QFrame:
        self.doubt_banner = QFrame()
        self.doubt_banner.setObjectName("dataDoubtBanner")
        self.doubt_banner.setStyleSheet(
            "#dataDoubtBanner { border: 1px solid #b9770e; border-radius: 4px; background: rgba(185, 119, 14, 0.08); }"
        )
        self.doubt_label = QLabel()
        self.doubt_label.setObjectName("dataDoubt")
        self.doubt_label.setWordWrap(True)
        self.doubt_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        QVBoxLayout(self.doubt_banner).addWidget(self.doubt_label)
        self.doubt_banner.hide()
        return self.doubt_banner

    def _build_classes_tab(self) -> QWidget:
        tab = QWidget()
        layout = QHBoxLayout(tab)
        self.class_table = QTableWidget(0, 3)
        self.class_table.setObjectName("classTable")
        self.class_table.setHorizontalHeaderLabels(["Class", "Samples", "Share"])
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.verticalHeader().hide()
        self.class_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.class_table.setFixedWidth(300)
        layout.addWidget(self.class_table)
        self.chart = BarChart()
        self.chart.setObjectName("classChart")
        self._chart_scroll = QScrollArea()
        self._chart_scroll.setWidgetResizable(True)
        self._chart_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._chart_scroll.setWidget(self.chart)
        layout.addWidget(self._chart_scroll, 1)
        self.no_classes_label = QLabel()
        self.no_classes_label.setObjectName("noClasses")
        self.no_classes_label.setWordWrap(True)
        self.no_classes_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.no_classes_label, 1)
        return tab

    def _build_problems_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.errors_box, self.errors_caption, self.errors_table = _problem_table("Errors", "problemErrors", "#c0392b")
        self.warnings_box, _, self.warnings_table = _problem_table("Warnings", "problemWarnings", "#b9770e")
        self.warnings_box.findChild(QLabel).setText("Worth a look; training can go on.")
        layout.addWidget(self.errors_box, 1)
        layout.addWidget(self.warnings_box, 1)
        self.no_problems_label = QLabel("No problems found.")
        self.no_problems_label.setObjectName("noProblems")
        layout.addWidget(self.no_problems_label)
        layout.addStretch(0)
        return tab

    # ------------------------------------------------------------ showing a report
    def show_nothing_yet(self, scanned: bool = False) -> None:
        if not scanned:
            self.summary_label.setText(
                "Choose a folder of images (one subfolder per class) or a CSV / TSV / JSONL / "
                "TXT file above — or drop it anywhere on this window."
            )
        else:
            self.summary_label.setText("No data to show.")
        self.doubt = None
        self.doubt_banner.hide()
        self.imbalance_label.hide()
        self.balanced_button.hide()
        self.class_table.setRowCount(0)
        self.chart.set_counts({})
        self.samples.clear()
        self.fill_problems([], None)

    def show_report(self, report) -> None:
        """The summary, classes and problems of a scan; then its samples are read in a worker."""
        kind = effective_kind(self.state.config.task.kind, report.suggested_kind)
        unit = "documents" if kind == TaskKind.CAUSAL_LM else "texts" if kind.is_text else "images"
        errors = sum(problem_severity(p) == "error" for p in report.problems)
        warnings = len(report.problems) - errors
        parts = [
            f"<b>{report.num_samples:,} {unit}</b>",
            FORMAT_LABELS.get(report.format, report.format),
            html(report.source),
        ]
        if errors or warnings:
            counts = ", ".join(
                t for t in (f"{errors} error(s)" if errors else "", f"{warnings} warning(s)" if warnings else "") if t
            )
            parts.append(f"<a href='problems'>{counts}</a>")
        self.summary_label.setText(" · ".join(parts))
        self._show_doubt(report)
        self.show_classes(report)
        self.fill_problems(report.problems, report.source, report)
        snapshot = self.state.config.model_copy(deep=True).with_base_dir(self.state.config.base_dir)
        self.samples.load(report, kind, snapshot)

    def _show_doubt(self, report) -> None:
        from finetune_gui.core.data.verdict import doubt

        self.doubt = doubt(report)
        if self.doubt is not None:
            lines = "".join(f"<br>• {html(reason)}" for reason in self.doubt.reasons)
            self.doubt_label.setText(
                f"<b>⚠ {html(self.doubt.headline)}.</b>{lines}<br>{html(self.doubt.todo)}"
                "<br><i>Start training asks before it trains on this data.</i>"
            )
        self.doubt_banner.setVisible(self.doubt is not None)

    def show_classes(self, report) -> None:
        kind = effective_kind(self.state.config.task.kind, report.suggested_kind)
        counts = report.labels
        has_classes = bool(counts)
        self.class_table.setVisible(has_classes)
        self._chart_scroll.setVisible(has_classes)
        self.no_classes_label.setVisible(not has_classes)
        if not has_classes and self.tabs.currentIndex() == 0:
            self.tabs.setCurrentWidget(self.samples_tab)
        if not has_classes:
            self.no_classes_label.setText(
                "A language model learns from the text itself: there are no classes."
                if kind == TaskKind.CAUSAL_LM
                else "Regression: each sample has a number, not a class."
                if kind.is_regression
                else "No classes found; see Problems."
            )
        total = sum(counts.values()) or 1
        self.class_table.setRowCount(len(counts))
        for r, (name, count) in enumerate(counts.items()):
            for c, text in enumerate((name, f"{count:,}", f"{count / total:.1%}")):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(r, c, item)
        found = imbalance(counts)
        self.chart.set_counts(counts, set(found[2]) if found else set())
        if found:
            big, small, smaller = found
            ratio = counts[big] / counts[small]
            others = [s for s in smaller if s != small]
            more = f" Also small: {', '.join(others[:6])}{'…' if len(others) > 6 else ''}." if others else ""
            self.imbalance_label.setText(
                f"⚠ Imbalanced classes: '{big}' has {counts[big]:,} samples, '{small}' only {counts[small]:,} "
                f"({ratio:.0f}×).{more} The model may neglect the small classes; add data for them or weight "
                "the classes."
            )
        found = found and not (self.doubt is not None and self.doubt.no_dataset)  # weights cannot mend that
        self.imbalance_label.setVisible(bool(found))
        self.balanced_button.setVisible(
            bool(found) and kind.is_classification and self.state.config.train.class_weights != "balanced"
        )

    def fill_problems(self, problems: list, source: str | None, report=None) -> None:
        """The problems in two tables, their reasons in the window's words; the errors' caption says whether
        training can start with the rest (report is the scan they come from)."""
        self._source = Path(source) if source is not None else None
        errors = [p for p in problems if problem_severity(p) == "error"]
        warnings = [p for p in problems if problem_severity(p) == "warning"]
        self.errors_caption.setText(errors_caption(report) if report is not None and errors else "")
        self.errors_caption.setVisible(bool(self.errors_caption.text()))
        reword = rewording(self.window()) if problems else str
        for box, table, items in (
            (self.errors_box, self.errors_table, errors),
            (self.warnings_box, self.warnings_table, warnings),
        ):
            table.setRowCount(len(items))
            for r, p in enumerate(items):
                path_item = QTableWidgetItem(self._short_path(p.path))
                path_item.setToolTip(p.path)
                table.setItem(r, 0, path_item)
                table.setItem(r, 1, QTableWidgetItem("" if p.line is None else str(p.line)))
                words = reword(p.reason)
                reason = QTableWidgetItem(words)
                reason.setToolTip(words)
                table.setItem(r, 2, reason)
            if len(items) <= 200:  # wrapping thousands of rows would hold up the main thread
                table.resizeRowsToContents()
            box.setTitle(box.title().split(" (")[0] + f" ({len(items)})")
            box.setVisible(bool(items))
        self.no_problems_label.setVisible(not problems)
        index = self.tabs.indexOf(self.problems_tab)
        self.tabs.setTabText(index, f"Problems ({len(problems)})" if problems else "Problems")

    def _short_path(self, path: str) -> str:
        """A problem's file relative to the data folder (cat/broken.png), else its name."""
        source, p = self._source, Path(path)
        if source is not None and source.is_dir() and p != source:
            try:
                return str(p.relative_to(source))
            except ValueError:
                pass
        return p.name or path


def _problem_table(title: str, name: str, colour: str) -> tuple[QGroupBox, QLabel, QTableWidget]:
    """A titled box with a caption (wrapped: it may be a long sentence) over a File / Line / What to do table."""
    box = QGroupBox(title)
    box.setStyleSheet(f"QGroupBox {{ color: {colour}; font-weight: bold; }}")
    caption = QLabel()
    caption.setObjectName(f"{name}Caption")
    caption.setWordWrap(True)
    caption.setStyleSheet("font-weight: normal;")
    table = QTableWidget(0, 3)
    table.setObjectName(name)
    table.setHorizontalHeaderLabels(["File", "Line", "What to do"])
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().hide()
    table.setWordWrap(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
    table.setColumnWidth(0, 220)
    table.setStyleSheet("font-weight: normal;")
    layout = QVBoxLayout(box)
    layout.addWidget(caption)
    layout.addWidget(table)
    return box, caption, table
