"""The data page: choose the data, see what a scan found (classes, splits, samples, problems), map columns.

Scanning, thumbnails and the first rows of a table are read in worker threads (`bridge.run_task`); each result
carries the generation it was asked for, so a late answer from an older scan never overwrites a newer one.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import TaskKind, field_info
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.widgets.bar_chart import BarChart
from finetune_gui.gui.widgets.config_form import ConfigForm
from finetune_gui.gui.widgets.image_grid import ImageGrid, rgb_of

KIND_LABELS = {
    "image-classification": "Image classification",
    "image-multilabel": "Image multi-label tagging",
    "image-regression": "Image regression (a number per image)",
    "text-classification": "Text classification",
    "text-regression": "Text regression (a number per text)",
    "causal-lm": "Causal language model (GPT-style)",
}
FORMAT_LABELS = {
    "folder": "image folder, one subfolder per class",
    "folder-splits": "image folder with train/val/test folders",
    "csv": "CSV table",
    "tsv": "TSV table",
    "jsonl": "JSON lines",
    "txt": "plain text",
}
SCAN_DEBOUNCE_MS = 300
IMBALANCE_RATIO = 3.0
THUMBS_PER_CLASS = 6
THUMB_CLASSES = 12
THUMB_SIDE = 88
PREVIEW_ROWS = 50
SCAN_FIELDS = ("path", "format", "text_column", "path_column", "label_columns", "label_separator")
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


def split_sizes(report: Any, config: Any) -> tuple[dict[str, int], str]:
    """Train/val/test sizes as the engine will make them, and where they come from.

    Only called once a scan report exists, so the engine's split functions (and torch) are already loaded.
    """
    from finetune_gui.core.data.common import random_split_indices, stratified_split_indices

    d, kind = config.data, config.task.kind
    if report.splits:
        sizes = {s: report.splits.get(s, 0) for s in ("train", "val", "test")}
        note = "from the data's own train/val/test folders or split column"
        if not sizes["val"] and d.val_fraction > 0:
            _, val, _ = random_split_indices(sizes["train"], d.val_fraction, 0.0, d.split_seed)
            sizes["train"], sizes["val"] = sizes["train"] - len(val), len(val)
            note += f"; val is {d.val_fraction:.0%} held out from train"
        return sizes, note
    n = report.num_samples
    if d.max_samples is not None and d.max_samples < n:
        n = d.max_samples
    if kind.is_classification and report.labels and n == report.num_samples:
        labels = [name for name, count in report.labels.items() for _ in range(count)]
        tr, va, te = stratified_split_indices(labels, d.val_fraction, d.test_fraction, d.split_seed)
        note = "random, keeping each class's share"
    else:
        tr, va, te = random_split_indices(n, d.val_fraction, d.test_fraction, d.split_seed)
        note = "random" + (f", from {n:,} of the samples (max_samples)" if n < report.num_samples else "")
    if kind == TaskKind.CAUSAL_LM:
        note += "; counted in documents here, in token blocks when training"
    return {"train": len(tr), "val": len(va), "test": len(te)}, note


# ---------------------------------------------------------------- worker jobs (run off the main thread)


def run_in_worker(page: QObject, fn, *args, on_result, on_error) -> None:
    """bridge.run_task(fn, *args); the bridge calls on_result / on_error on the main thread."""
    page.bridge.run_task(fn, *args, on_result=on_result, on_error=on_error)


def scan_job(config):
    from finetune_gui.core.data import scan_data

    return scan_data(config)


def thumbnail_job(
    config, kind: TaskKind, per_class: int = THUMBS_PER_CLASS, max_classes: int = THUMB_CLASSES, side: int = THUMB_SIDE
) -> tuple[list, str]:
    """A few decoded, shrunk images per class (or across the value range for regression) as RGB bytes."""
    from finetune_gui.core.data.images import collect_images, load_rgb

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


# ---------------------------------------------------------------- the page


class DataPage(Page):
    """Choose the data and the task; the page scans it in the background and shows what it found."""

    key = "data"
    title = "Data"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.report = None
        self._scan_gen = 0
        self._samples_gen = 0
        self._scanned_key: tuple | None = None
        self._user_chose_kind = False
        self._last_path = state.config.data.path
        self._loading = False
        self._waiting_for_scan = False
        self._columns_shown: tuple | None = None
        self._scan_timer = QTimer(self, singleShot=True, interval=SCAN_DEBOUNCE_MS)
        self._scan_timer.timeout.connect(self.rescan)

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_path_row())
        layout.addLayout(self._build_kind_row())
        layout.addWidget(self._build_error_banner())
        body = QHBoxLayout()
        body.addWidget(self._build_settings_column())
        body.addWidget(self._build_results(), 1)
        layout.addLayout(body, 1)

        state.changed.connect(self._on_state_changed)
        self._sync_from_state()
        self._show_nothing_yet()
        if state.config.data.path:
            self._scan_timer.start()

    # ------------------------------------------------------------ building
    def _build_path_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Data</b>"))
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("dataPath")
        self.path_edit.setPlaceholderText(
            "a folder of images (one subfolder per class), or a CSV / TSV / JSONL / TXT file"
        )
        self.path_edit.editingFinished.connect(lambda: self.set_data_path(self.path_edit.text().strip()))
        row.addWidget(self.path_edit, 1)
        for text, name, slot in (
            ("Folder…", "chooseFolder", self.choose_folder),
            ("File…", "chooseFile", self.choose_file),
            ("Rescan", "rescan", lambda: self.rescan(force=True)),
        ):
            button = QPushButton(text)
            button.setObjectName(name)
            button.clicked.connect(slot)
            row.addWidget(button)
        return row

    def _build_kind_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(QLabel("Task"))
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("taskKind")
        for kind in TaskKind:
            self.kind_combo.addItem(KIND_LABELS[kind.value], kind.value)
        self.kind_combo.setToolTip("What the model learns to do.")
        self.kind_combo.activated.connect(self._kind_chosen)
        row.addWidget(self.kind_combo)
        self.detected_label = QLabel()
        self.detected_label.setObjectName("detectedKind")
        row.addWidget(self.detected_label)
        self.use_detected = QPushButton("Use detected")
        self.use_detected.setObjectName("useDetected")
        self.use_detected.clicked.connect(self.apply_detected_kind)
        self.use_detected.hide()
        row.addWidget(self.use_detected)
        row.addStretch(1)
        return row

    def _build_error_banner(self) -> QFrame:
        self.error_banner = QFrame()
        self.error_banner.setObjectName("dataError")
        self.error_banner.setStyleSheet(
            "#dataError { border: 1px solid #c0392b; border-radius: 4px; background: rgba(192, 57, 43, 0.08); }"
        )
        box = QVBoxLayout(self.error_banner)
        self.error_label = QLabel()
        self.error_label.setObjectName("dataErrorMessage")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.error_label)
        self.error_banner.hide()
        return self.error_banner

    def _build_settings_column(self) -> QScrollArea:
        host = QWidget()
        column = QVBoxLayout(host)
        column.setContentsMargins(0, 0, 6, 0)

        self.columns_box = QGroupBox("Columns")
        self.columns_box.setObjectName("columnMapping")
        form = QFormLayout(self.columns_box)
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
        self.columns_box.hide()
        column.addWidget(self.columns_box)

        split_box = QGroupBox("Split")
        split_layout = QVBoxLayout(split_box)
        self.split_form = ConfigForm(self.state, "data", ["val_fraction", "test_fraction", "split_seed"])
        split_layout.addWidget(self.split_form)
        self.split_label = QLabel()
        self.split_label.setObjectName("splitSizes")
        self.split_label.setWordWrap(True)
        split_layout.addWidget(self.split_label)
        column.addWidget(split_box)

        more_box = QGroupBox("Reading the data")
        more_layout = QVBoxLayout(more_box)
        self.more_form = ConfigForm(
            self.state, "data", ["format", "label_separator", "image_size", "max_length", "max_samples", "num_workers"]
        )
        more_layout.addWidget(self.more_form)
        column.addWidget(more_box)
        column.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(host)
        scroll.setFixedWidth(360)
        return scroll

    def _build_results(self) -> QWidget:
        host = QWidget()
        column = QVBoxLayout(host)
        column.setContentsMargins(6, 0, 0, 0)
        self.summary_label = QLabel()
        self.summary_label.setObjectName("dataSummary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.linkActivated.connect(lambda _: self.tabs.setCurrentWidget(self.problems_tab))
        column.addWidget(self.summary_label)

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

        self.tabs = QTabWidget()
        self.tabs.setObjectName("dataTabs")
        self.tabs.addTab(self._build_classes_tab(), "Classes")
        self.samples_tab = QWidget()
        samples = QVBoxLayout(self.samples_tab)
        self.thumbnails = ImageGrid(THUMB_SIDE, caption_width=90)
        self.thumbnails.setObjectName("thumbnails")
        self.rows_table = QTableWidget()
        self.rows_table.setObjectName("firstRows")
        self.rows_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.rows_table.setWordWrap(False)
        samples.addWidget(self.thumbnails)
        samples.addWidget(self.rows_table)
        self.tabs.addTab(self.samples_tab, "Samples")
        self.problems_tab = self._build_problems_tab()
        self.tabs.addTab(self.problems_tab, "Problems")
        column.addWidget(self.tabs, 1)
        return host

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
        chart_scroll = QScrollArea()
        chart_scroll.setWidgetResizable(True)
        chart_scroll.setFrameShape(QFrame.Shape.NoFrame)
        chart_scroll.setWidget(self.chart)
        layout.addWidget(chart_scroll, 1)
        self.no_classes_label = QLabel()
        self.no_classes_label.setObjectName("noClasses")
        self.no_classes_label.setWordWrap(True)
        self.no_classes_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.no_classes_label, 1)
        self._chart_scroll = chart_scroll
        return tab

    def _build_problems_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.errors_box, self.errors_table = self._problem_table(
            "Errors: these samples are left out, or training cannot start", "problemErrors", "#c0392b"
        )
        self.warnings_box, self.warnings_table = self._problem_table(
            "Warnings: worth a look, training can go on", "problemWarnings", "#b9770e"
        )
        layout.addWidget(self.errors_box, 1)
        layout.addWidget(self.warnings_box, 1)
        self.no_problems_label = QLabel("No problems found.")
        self.no_problems_label.setObjectName("noProblems")
        layout.addWidget(self.no_problems_label)
        layout.addStretch(0)
        return tab

    def _problem_table(self, caption: str, name: str, colour: str) -> tuple[QGroupBox, QTableWidget]:
        box = QGroupBox(caption)
        box.setStyleSheet(f"QGroupBox {{ color: {colour}; font-weight: bold; }}")
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
        QVBoxLayout(box).addWidget(table)
        return box, table

    # ------------------------------------------------------------ choosing data and task
    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a folder of images or text files", self._dialog_start())
        if path:
            self.set_data_path(path)

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a data file",
            self._dialog_start(),
            "Data (*.csv *.tsv *.tab *.jsonl *.ndjson *.txt);;All files (*)",
        )
        if path:
            self.set_data_path(path)

    def _dialog_start(self) -> str:
        d = self.state.config.data
        return str(self.state.config.resolve(d.path).parent) if d.path else str(Path.home())

    def set_data_path(self, path: str) -> None:
        if path != self.state.config.data.path:
            self.state.set_value("data", "path", path)  # new data: the detected task may be applied again

    def _kind_chosen(self, index: int) -> None:
        value = self.kind_combo.itemData(index)
        if value != self.state.config.task.kind.value:
            self._user_chose_kind = True
            self.state.set_value("task", "kind", value)

    def apply_detected_kind(self) -> None:
        kind = self.report.suggested_kind if self.report is not None else None
        if kind is not None and kind != self.state.config.task.kind:
            self.state.set_value("task", "kind", kind.value)

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

    # ------------------------------------------------------------ following the config
    def _on_state_changed(self, section: str) -> None:
        path = self.state.config.data.path
        if section == "" or path != self._last_path:
            self._user_chose_kind = False  # a new setup or new data (picked here or dropped on the window)
        self._last_path = path
        if section not in ("", "data", "task", "train"):
            return
        self._sync_from_state()
        if self._scan_key() != self._scanned_key:
            self._scan_timer.start()
        elif self.report is not None:
            self._show_splits()
            self._show_classes(self.report)

    def _sync_from_state(self) -> None:
        config = self.state.config
        self._loading = True
        try:
            if not self.path_edit.hasFocus() and self.path_edit.text() != config.data.path:
                self.path_edit.setText(config.data.path)
            self.path_edit.setToolTip(str(config.resolve(config.data.path)) if config.data.path else "")
            self.kind_combo.setCurrentIndex(self.kind_combo.findData(config.task.kind.value))
            self._show_detected()
            self._show_column_rows()
            self._fill_columns(self.report.columns if self.report is not None else [])
        finally:
            self._loading = False
        kind = config.task.kind
        is_table = bool(self.report is not None and self.report.columns)
        for key, visible in (
            ("image_size", kind.is_image),
            ("max_length", not kind.is_image),
            ("label_separator", kind.is_image and is_table),
        ):
            self.more_form.layout().setRowVisible(self.more_form.editors[key], visible)

    def _scan_key(self) -> tuple:
        d = self.state.config.data
        values = tuple(str(getattr(d, f)) for f in SCAN_FIELDS)
        return values + (self.state.config.task.kind.value, str(self.state.config.base_dir))

    # ------------------------------------------------------------ scanning
    def rescan(self, force: bool = False) -> None:
        """Scan the configured data in a worker; results of any earlier scan still running are ignored."""
        self._scan_timer.stop()
        key = self._scan_key()
        if key == self._scanned_key and not force:
            return
        self._scanned_key = key
        self._scan_gen += 1
        self._samples_gen += 1
        gen = self._scan_gen
        config = self.state.config
        if not config.data.path:
            self.report = None
            self._waiting_for_scan = False
            self.state.set_scan(None)
            self._hide_error()
            self._show_nothing_yet()
            return
        snapshot = config.model_copy(deep=True).with_base_dir(config.base_dir)
        self.summary_label.setText("Scanning the data…")
        self._waiting_for_scan = True
        run_in_worker(
            self, scan_job, snapshot, on_result=partial(self._scan_done, gen), on_error=partial(self._scan_failed, gen)
        )

    @property
    def scanning(self) -> bool:
        """True while a scan was asked for (or is waiting for its debounce) and has not answered."""
        return self._scan_timer.isActive() or self._waiting_for_scan

    def _scan_done(self, gen: int, report) -> None:
        if gen != self._scan_gen:
            return
        self._waiting_for_scan = False
        self.report = report
        self._hide_error()
        self.state.set_scan(report)
        if self._maybe_apply_detected(report):
            return  # the task changed; a new scan follows
        self._sync_from_state()
        self._show_report(report)
        self._load_samples(report)

    def _scan_failed(self, gen: int, error_type: str, message: str, details: str) -> None:
        if gen != self._scan_gen:
            return
        self._waiting_for_scan = False
        self.report = None
        self.state.set_scan(None)
        self._show_nothing_yet(scanned=True)
        self._sync_from_state()
        expected = error_type in ("DataError", "ConfigError")
        what = (
            "Choose another folder or file, or fix the data as the message says and press Rescan."
            if expected
            else "This looks like a bug; the details are in the error dialog."
        )
        self.error_banner.show()
        self.error_label.setText(f"<b>The data cannot be used yet.</b><br>{_html(message)}<br><i>{what}</i>")
        if not expected:
            self.error.emit(error_type, message, details)

    def _hide_error(self) -> None:
        self.error_banner.hide()
        self.error_label.clear()

    # ------------------------------------------------------------ detected task
    def _maybe_apply_detected(self, report) -> bool:
        """Apply the detected task when the user has not picked one and the current one does not fit."""
        suggested, current = report.suggested_kind, self.state.config.task.kind
        if suggested is None or suggested == current or self._user_chose_kind:
            return False
        if self.state.config_path is not None and modality(suggested) == modality(current):
            return False  # a preset's own choice of a related task stands; the button offers the other
        self.state.set_value("task", "kind", suggested.value)
        return True

    def _show_detected(self) -> None:
        suggested = self.report.suggested_kind if self.report is not None else None
        if suggested is None:
            self.detected_label.clear()
            self.use_detected.hide()
            return
        same = suggested == self.state.config.task.kind
        self.detected_label.setText(f"detected: {KIND_LABELS[suggested.value].lower()}" + (" ✓" if same else ""))
        self.use_detected.setVisible(not same)

    # ------------------------------------------------------------ columns
    def _show_column_rows(self) -> None:
        kind = self.state.config.task.kind
        columns = self.report.columns if self.report is not None else []
        self.columns_box.setVisible(bool(columns))
        unknown = self.report is None or self.report.suggested_kind is None  # nothing recognised: offer every row
        form: QFormLayout = self.columns_box.layout()
        form.setRowVisible(self.text_column, unknown or not kind.is_image)
        form.setRowVisible(self.path_column, unknown or kind.is_image)
        form.setRowVisible(self.label_columns, True)  # picking a label also turns an LM table into a labelled one

    def _fill_columns(self, columns: list[str]) -> None:
        d = self.state.config.data
        shown = (tuple(columns), d.text_column, d.path_column, tuple(d.label_columns))
        if shown == self._columns_shown:
            return
        self._columns_shown = shown
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

    # ------------------------------------------------------------ showing a report
    def _show_nothing_yet(self, scanned: bool = False) -> None:
        if not scanned:
            self.summary_label.setText(
                "Choose a folder of images (one subfolder per class) or a CSV / TSV / JSONL / "
                "TXT file above — or drop it anywhere on this window."
            )
        else:
            self.summary_label.setText("No data to show.")
        self.imbalance_label.hide()
        self.balanced_button.hide()
        self.split_label.clear()
        self.class_table.setRowCount(0)
        self.chart.set_counts({})
        self.thumbnails.clear()
        self.thumbnails.set_message("")
        self.rows_table.clear()
        self.rows_table.setRowCount(0)
        self.rows_table.setColumnCount(0)
        self._fill_problems([])
        self.detected_label.clear()
        self.use_detected.hide()

    def _show_report(self, report) -> None:
        kind = effective_kind(self.state.config.task.kind, report.suggested_kind)
        unit = "documents" if kind == TaskKind.CAUSAL_LM else "texts" if kind.is_text else "images"
        errors = sum(problem_severity(p) == "error" for p in report.problems)
        warnings = len(report.problems) - errors
        parts = [
            f"<b>{report.num_samples:,} {unit}</b>",
            FORMAT_LABELS.get(report.format, report.format),
            _html(report.source),
        ]
        if errors or warnings:
            counts = ", ".join(
                t for t in (f"{errors} error(s)" if errors else "", f"{warnings} warning(s)" if warnings else "") if t
            )
            parts.append(f"<a href='problems'>{counts}</a>")
        self.summary_label.setText(" · ".join(parts))
        self._show_classes(report)
        self._show_splits()
        self._fill_problems(report.problems)

    def _show_classes(self, report) -> None:
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
        self.imbalance_label.setVisible(bool(found))
        self.balanced_button.setVisible(
            bool(found) and kind.is_classification and self.state.config.train.class_weights != "balanced"
        )

    def _show_splits(self) -> None:
        if self.report is None or not self.report.num_samples:
            self.split_label.clear()
            return
        sizes, note = split_sizes(self.report, self.state.config)
        self.split_label.setText(
            f"<b>train {sizes['train']:,} · val {sizes['val']:,} · test {sizes['test']:,}</b>"
            f"<br><small>{_html(note)}</small>"
        )

    def _fill_problems(self, problems: list) -> None:
        errors = [p for p in problems if problem_severity(p) == "error"]
        warnings = [p for p in problems if problem_severity(p) == "warning"]
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
                reason = QTableWidgetItem(p.reason)
                reason.setToolTip(p.reason)
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
        source = Path(self.report.source) if self.report is not None else None
        p = Path(path)
        if source is not None and source.is_dir() and p != source:
            try:
                return str(p.relative_to(source))
            except ValueError:
                pass
        return p.name or path

    # ------------------------------------------------------------ samples (thumbnails or first rows)
    def _load_samples(self, report) -> None:
        self._samples_gen += 1
        gen = self._samples_gen
        kind = effective_kind(self.state.config.task.kind, report.suggested_kind)
        snapshot = self.state.config.model_copy(deep=True).with_base_dir(self.state.config.base_dir)
        self.thumbnails.setVisible(kind.is_image)
        self.rows_table.setVisible(not kind.is_image)
        if not report.num_samples:
            self.thumbnails.clear()
            self.thumbnails.set_message("No usable samples.")
            return
        if kind.is_image:
            self.thumbnails.set_message("Loading thumbnails…")
            run_in_worker(
                self,
                thumbnail_job,
                snapshot,
                kind,
                on_result=partial(self._thumbnails_done, gen),
                on_error=partial(self._samples_failed, gen),
            )
        else:
            run_in_worker(
                self,
                first_rows_job,
                snapshot,
                on_result=partial(self._rows_done, gen),
                on_error=partial(self._samples_failed, gen),
            )

    def _thumbnails_done(self, gen: int, result) -> None:
        if gen != self._samples_gen:
            return
        rows, note = result
        self.thumbnails.set_rows(rows)
        self.thumbnails.set_message(note)

    def _rows_done(self, gen: int, result) -> None:
        if gen != self._samples_gen:
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
            wide = name == self.state.config.data.text_column or len(columns) == 1
            header.setSectionResizeMode(
                c, QHeaderView.ResizeMode.Stretch if wide else QHeaderView.ResizeMode.ResizeToContents
            )

    def _samples_failed(self, gen: int, error_type: str, message: str, details: str) -> None:
        if gen != self._samples_gen:
            return
        self.thumbnails.set_message(f"Samples could not be shown: {message}")
        if error_type not in ("DataError", "ConfigError"):
            self.error.emit(error_type, message, details)

    def on_shown(self) -> None:
        if self._scan_key() != self._scanned_key and not self._scan_timer.isActive():
            self.rescan()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
