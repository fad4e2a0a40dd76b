"""The data page: choose the data, see what a scan found (classes, splits, samples, problems), map columns.

A composition of panels: the column mapping (panels/column_mapping.py) and the scan results
(panels/scan_results.py, with the samples tab in panels/data_samples.py); the page scans and keeps the split.

Scanning, thumbnails and the first rows of a table are read in worker threads (`bridge.run_task`); each result
carries the generation it was asked for, so a late answer from an older scan never overwrites a newer one.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import TaskKind
from finetune_gui.core import plan
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.column_mapping import ColumnMapping
from finetune_gui.gui.panels.scan_results import ScanResults, html, modality
from finetune_gui.gui.widgets.config_form import ConfigForm
from finetune_gui.gui.wording import CONFIG_KEY, reword

KIND_LABELS = {
    "image-classification": "Image classification",
    "image-multilabel": "Image multi-label tagging",
    "image-regression": "Image regression (a number per image)",
    "text-classification": "Text classification",
    "text-regression": "Text regression (a number per text)",
    "causal-lm": "Causal language model (GPT-style)",
}
SCAN_DEBOUNCE_MS = 300
SCAN_FIELDS = ("path", "format", "text_column", "path_column", "label_columns", "label_separator")
# ---------------------------------------------------------------- plain helpers (no Qt)


def run_in_worker(page: QObject, fn, *args, on_result, on_error) -> None:
    """bridge.run_task(fn, *args); the bridge calls on_result / on_error on the main thread."""
    page.bridge.run_task(fn, *args, on_result=on_result, on_error=on_error)


def scan_job(config):
    from finetune_gui.core.data import scan_data

    return scan_data(config)


# ---------------------------------------------------------------- the page


class DataPage(Page):
    """Choose the data and the task; the page scans it in the background and shows what it found."""

    key = "data"
    title = "Data"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.report = None
        self._scan_gen = 0
        self._scanned_key: tuple | None = None
        self._user_chose_kind = False
        self._last_path = state.config.data.path
        self._waiting_for_scan = False
        self._scan_timer = QTimer(self, singleShot=True, interval=SCAN_DEBOUNCE_MS)
        self._scan_timer.timeout.connect(self.rescan)

        layout = QVBoxLayout(self)
        layout.addLayout(self._build_path_row())
        layout.addLayout(self._build_kind_row())
        layout.addWidget(self._build_error_banner())
        body = QHBoxLayout()
        body.addWidget(self._build_settings_column())
        self.results = ScanResults(state, bridge)
        self.results.samples.error.connect(self.error)
        body.addWidget(self.results, 1)
        layout.addLayout(body, 1)

        state.changed.connect(self._on_state_changed)
        self._sync_from_state()
        self._show_nothing_yet()
        if state.config.data.path:
            self._scan_timer.start()

    # ------------------------------------------------------------ building
    def _build_path_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
        label = QLabel("<b>Data folder or file</b>")
        row.addWidget(label)
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("dataPath")
        self.path_edit.setProperty(CONFIG_KEY, "data.path")  # messages about data.path name this field
        label.setBuddy(self.path_edit)
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

    def _build_kind_row(self) -> QVBoxLayout:
        """The task row, and under it a line for what the app changed to fit the task (the model)."""
        row = QHBoxLayout()
        label = QLabel("Task")
        row.addWidget(label)
        self.kind_combo = QComboBox()
        self.kind_combo.setObjectName("taskKind")
        self.kind_combo.setProperty(CONFIG_KEY, "task.kind")
        label.setBuddy(self.kind_combo)
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
        self.notice_label = QLabel()
        self.notice_label.setObjectName("taskNotice")
        self.notice_label.setStyleSheet("color: palette(dark);")
        self.notice_label.setWordWrap(True)  # a long line wraps; it is never cut off at the window's edge
        self.notice_label.hide()
        self.state.notice.connect(self._show_notice)
        column = QVBoxLayout()
        column.addLayout(row)
        column.addWidget(self.notice_label)
        return column

    def _show_notice(self, text: str) -> None:
        """Notices about the same data add up (the columns, then the model, were changed for it)."""
        said = [line for line in self.notice_label.text().split("\n") if line and line != text]
        self.notice_label.setText("\n".join([*said[-2:], text]))
        self.notice_label.setVisible(bool(text))

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

        self.columns_box = ColumnMapping(self.state)
        for editor, key in (
            (self.columns_box.text_column, "data.text_column"),
            (self.columns_box.path_column, "data.path_column"),
            (self.columns_box.label_columns, "data.label_columns"),
        ):
            editor.setProperty(CONFIG_KEY, key)
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
            self.state,
            "data",
            ["format", "label_separator", "image_size", "max_length", "max_samples", "num_workers", "decode_cache"],
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

    # ------------------------------------------------------------ following the config
    def _on_state_changed(self, section: str) -> None:
        path = self.state.config.data.path
        if section == "" or path != self._last_path:
            self._user_chose_kind = False  # a new setup or new data (picked here or dropped on the window)
            self.notice_label.clear()  # what was said about the last data
        self._last_path = path
        if section not in ("", "data", "task", "train"):
            return
        self._sync_from_state()
        if self._scan_key() != self._scanned_key:
            self._scan_timer.start()
        elif self.report is not None:
            self._show_splits()
            self.results.show_classes(self.report)

    def _sync_from_state(self) -> None:
        config = self.state.config
        if not self.path_edit.hasFocus() and self.path_edit.text() != config.data.path:
            self.path_edit.setText(config.data.path)
        self.path_edit.setToolTip(str(config.resolve(config.data.path)) if config.data.path else "")
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(config.task.kind.value))
        self._show_detected()
        self.columns_box.show_for(self.report)
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
        self.results.samples.drop_pending()
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
        self.results.summary_label.setText("Scanning the data…")
        self._waiting_for_scan = True
        run_in_worker(
            self, scan_job, snapshot, on_result=partial(self._scan_done, gen), on_error=partial(self._scan_failed, gen)
        )

    def doubt(self):
        """The core.data.verdict.Doubt about the data as last scanned; None when it looks like a dataset, cannot
        train at all, or a newer scan is still on its way."""
        if self.scanning or self._scan_key() != self._scanned_key:
            return None
        return self.results.doubt if self.report is not None else None

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
        if self._maybe_apply_columns(report) or self._maybe_apply_detected(report):
            return  # the columns or the task changed; a new scan follows
        self._sync_from_state()
        self.results.show_report(report)
        self._show_splits()

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
        words = html(reword(message, self))
        self.error_label.setText(f"<b>The data cannot be used yet.</b><br>{words}<br><i>{what}</i>")
        if not expected:
            self.error.emit(error_type, message, details)

    def _hide_error(self) -> None:
        self.error_banner.hide()
        self.error_label.clear()

    # ------------------------------------------------------------ detected columns and task
    def _maybe_apply_columns(self, report) -> bool:
        """The file has none of the configured column names: use the columns its contents suggest, and say so."""
        guess = report.suggested_columns
        if not guess:
            return False
        d = self.state.config.data
        missing = d.path_column if "path_column" in guess else d.text_column
        for key, value in guess.items():
            self.state.set_value("data", key, value)
        chosen = {"path_column": "image paths", "text_column": "text", "label_columns": "label"}
        said = ", ".join(f"{chosen[k]} “{v[0] if isinstance(v, list) else v}”" for k, v in guess.items())
        self.state.notice.emit(
            f"Columns chosen from what the file holds: {said} (it has no “{missing}” column). Change them under Columns."
        )
        return True

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

    # ------------------------------------------------------------ showing a report
    def _show_nothing_yet(self, scanned: bool = False) -> None:
        self.results.show_nothing_yet(scanned)
        self.split_label.clear()
        self.detected_label.clear()
        self.use_detected.hide()

    def _show_splits(self) -> None:
        if self.report is None or not self.report.num_samples:
            self.split_label.clear()
            return
        split = plan.plan_splits(self.state.config, self.report)
        sizes, note = split.sizes, split.note
        self.split_label.setText(
            f"<b>train {sizes['train']:,} · val {sizes['val']:,} · test {sizes['test']:,}</b>"
            f"<br><small>{html(note)}</small>"
        )

    def on_shown(self) -> None:
        if self._scan_key() != self._scanned_key and not self._scan_timer.isActive():
            self.rescan()
