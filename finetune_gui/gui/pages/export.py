"""The Export page: write the run's model as TorchScript, ONNX, .pt2, safetensors or a Hugging Face folder and show
how each file compares with the trained model.

Only the formats the run's task supports are offered. The export and its verification run in a worker through
bridge.run_task (core.export.export_run); its progress lines reach the page as a queued signal. The table shows,
per format, the max abs difference, top-1 agreement, the batch sizes checked, the file's size, how fast the ONNX
files ran against the PyTorch model, and pass/FAIL; "Open folder" shows the result in the file manager. ONNX int8
is offered to classifiers, unticked: it is judged by top-1 agreement, not by the element-wise tolerance.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.export.formats import DESCRIPTIONS, FILES, FORMATS, run_task, supported_formats
from finetune_gui.core.export.report import human_size, speed_text
from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.pages.base import Page

#: Ticked when a run is opened (those its task supports).
DEFAULT_FORMATS = ("onnx", "safetensors", "hf")
COLUMNS = ("Format", "File", "Max abs diff", "Top-1 agreement", "Batch sizes", "Size", "Speed vs PyTorch", "Result")
PASS_COLOUR, FAIL_COLOUR = QColor(46, 125, 50), QColor(198, 40, 40)
NO_RUN = "Train a model or open a run folder (File → Open run folder) to export it."


def export_job(run_dir: str, formats: list[str], output: str | None, progress):
    """Worker: export and verify (core.export.export_run); `progress` is a signal's emit, safe from any thread."""
    from finetune_gui.core.export import export_run

    return export_run(run_dir, formats, output=output or None, progress=progress)


class ExportPage(Page):
    key = "export"
    title = "Export"
    progress_line = Signal(str)  # emitted from the worker thread, delivered queued in the main thread

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.report = None  # the last ExportReport
        self.task: str | None = None
        self._busy = False
        self._token = 0
        self._build()
        self.progress_line.connect(self._on_progress)
        state.run_changed.connect(self._on_run_changed)
        bridge.run_finished.connect(self._on_run_finished)
        self._on_run_changed(str(state.run_dir or ""))

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.run_label = QLabel("No model yet")
        self.run_label.setObjectName("export-run")
        self.run_label.setStyleSheet("font-weight: 600;")
        self.status_label = QLabel(NO_RUN)
        self.status_label.setObjectName("export-status")
        self.status_label.setWordWrap(True)

        formats = QGroupBox("Formats")
        grid = QGridLayout(formats)
        grid.setColumnStretch(1, 1)
        self.boxes: dict[str, QCheckBox] = {}
        self.notes: dict[str, QLabel] = {}
        for row, fmt in enumerate(FORMATS):
            name, _, what = DESCRIPTIONS[fmt].partition(":")
            box = QCheckBox(name)
            box.setObjectName(f"export-format-{fmt}")
            box.toggled.connect(self._update_buttons)
            note = QLabel(f"{what.strip()}  ·  {FILES[fmt]}")
            note.setStyleSheet("color: palette(dark);")
            note.setWordWrap(True)
            grid.addWidget(box, row, 0)
            grid.addWidget(note, row, 1)
            self.boxes[fmt], self.notes[fmt] = box, note

        self.output_edit = QLineEdit()
        self.output_edit.setObjectName("export-output")
        self.output_edit.setPlaceholderText("a new folder under the run: exports/DATE-TIME")
        self.output_edit.setToolTip("The folder to create. It must be new or empty: an export never overwrites files.")
        self.choose_button = QPushButton("Choose…")
        self.choose_button.clicked.connect(self.choose_output)
        self.export_button = QPushButton("Export and verify")
        self.export_button.setObjectName("export-start")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # indeterminate: how long ONNX export takes is not known in advance
        self.busy_bar.setMaximumWidth(160)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        out_row = QHBoxLayout()
        out_row.addWidget(QLabel("Output folder"))
        out_row.addWidget(self.output_edit, 1)
        out_row.addWidget(self.choose_button)
        out_row.addSpacing(12)
        out_row.addWidget(self.export_button)
        out_row.addWidget(self.busy_bar)

        self.log = QPlainTextEdit()
        self.log.setObjectName("export-log")
        self.log.setReadOnly(True)
        self.log.setPlaceholderText("Progress appears here.")
        self.log.setMaximumBlockCount(500)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("export-table")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("export-summary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open folder")
        self.open_button.setObjectName("export-open")
        self.open_button.clicked.connect(self.open_folder)
        result_row = QHBoxLayout()
        result_row.addWidget(self.summary_label, 1)
        result_row.addWidget(self.open_button)

        rows_high = self.table.verticalHeader().defaultSectionSize() * len(FORMATS)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + rows_high + 6)
        verification = QGroupBox("Verification against the trained model")
        v = QVBoxLayout(verification)
        v.addWidget(self.table)
        v.addLayout(result_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(self.run_label)
        layout.addWidget(self.status_label)
        layout.addWidget(formats)
        layout.addLayout(out_row)
        layout.addWidget(verification)
        layout.addWidget(QLabel("Progress"))
        layout.addWidget(self.log, 1)
        self._update_buttons()

    # ------------------------------------------------------------ the run

    def _on_run_changed(self, path: str) -> None:
        self._token += 1  # a running export's result still arrives, but for the old run: shown, not mixed up
        self.report = None
        self._fill_table([])
        self.summary_label.setText("")
        self.log.clear()
        self.task = None
        if not path:
            self.run_label.setText("No model yet")
            self.status_label.setText(NO_RUN)
            self._set_formats(())
            return
        self.run_label.setText(f"Export the model of run {Path(path).name}")
        self.run_label.setToolTip(path)
        from finetune_gui.core.errors import ExportError

        try:
            self.task = run_task(path)  # labels.json: a small JSON read
            allowed = supported_formats(self.task)
        except ExportError as e:
            self.status_label.setText(f"Nothing to export: {e}")
            self._set_formats(())
            return
        self.status_label.setText(
            f"{self.task} model. Tick the formats to write; each file is loaded back and compared with the trained "
            "model on samples of the validation split."
        )
        self._set_formats(allowed)

    def _on_run_finished(self, event) -> None:
        if self.state.run_dir is not None and Path(event.run_dir) == Path(self.state.run_dir) and not self._busy:
            self._on_run_changed(str(self.state.run_dir))

    def _set_formats(self, allowed) -> None:
        for fmt, box in self.boxes.items():
            on = fmt in allowed
            box.setVisible(on)
            self.notes[fmt].setVisible(on)
            box.setChecked(on and fmt in DEFAULT_FORMATS)
        self._update_buttons()

    def selected_formats(self) -> list[str]:
        return [fmt for fmt, box in self.boxes.items() if box.isChecked() and not box.isHidden()]

    # ------------------------------------------------------------ exporting

    def choose_output(self) -> None:
        start = self.output_edit.text() or str(self.state.run_dir or "")
        folder = QFileDialog.getExistingDirectory(self, "Export into (a new or empty folder)", start)
        if folder:
            self.output_edit.setText(folder)

    def start_export(self) -> bool:
        """Start exporting the ticked formats; False when there is nothing to do or an export is running."""
        formats = self.selected_formats()
        if self._busy or self.state.run_dir is None or not formats:
            return False
        self._token += 1
        self.report = None
        self._fill_table([])
        self.log.clear()
        self.summary_label.setText("")
        self._set_busy(True)
        self.status_label.setText(f"Exporting {', '.join(formats)} and verifying each file…")
        output = self.output_edit.text().strip()
        self.bridge.run_task(
            export_job,
            str(self.state.run_dir),
            formats,
            output,
            self.progress_line.emit,
            on_result=partial(self._exported, self._token),
            on_error=partial(self._failed, self._token),
        )
        return True

    @Slot(str)
    def _on_progress(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _exported(self, token: int, report) -> None:
        self._set_busy(False)
        if token != self._token:
            return
        self.report = report
        self._fill_table(report.results)
        failed = [r.format for r in report.results if not r.passed]
        if failed:
            self.summary_label.setText(
                f"Verification FAILED for {', '.join(failed)}: do not deploy those files (see "
                f"the tooltips and the log). Folder: {report.folder}"
            )
            self.summary_label.setStyleSheet(f"color: {FAIL_COLOUR.name()}; font-weight: 600;")
        else:
            what = "give the trained model's outputs"
            if any(r.format == "onnx-int8" for r in report.results):
                what = "pass: the int8 file keeps the trained model's predictions, any others its outputs"
            self.summary_label.setText(f"All {len(report.results)} file(s) {what}. Folder: {report.folder}")
            self.summary_label.setStyleSheet(f"color: {PASS_COLOUR.name()}; font-weight: 600;")
        merge = f" {report.merge['message']}." if report.merge else ""
        self.status_label.setText(f"Exported to {report.folder} ({report.samples}).{merge}")
        self.output_edit.clear()  # that folder now holds files; the next export needs another
        self._update_buttons()

    def _failed(self, token: int, error_type: str, message: str, details: str) -> None:
        self._set_busy(False)
        if token != self._token:
            return
        self.status_label.setText(f"Export failed: {message}")
        self.summary_label.setText("")
        if not is_expected(error_type):  # said above; only a fault of the app gets the dialog
            self.error.emit(error_type, message, details)

    def _fill_table(self, results) -> None:
        self.table.setRowCount(len(results))
        for row, r in enumerate(results):
            diff = f"{r.max_abs_diff:.2e}" if math.isfinite(r.max_abs_diff) else "—"
            top1 = f"{r.top1_agreement:.1%}" if r.top1_agreement is not None else "n/a"
            cells = (
                r.format,
                FILES.get(r.format, ""),
                diff,
                top1,
                ", ".join(map(str, r.batch_sizes)),
                human_size(r.size_bytes),
                speed_text(r),
                "pass" if r.passed else "FAIL",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(r.message)
                if col >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if col == len(cells) - 1:
                    item.setForeground(QBrush(PASS_COLOUR if r.passed else FAIL_COLOUR))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, col, item)

    def open_folder(self) -> None:
        if self.report is not None and self.report.folder.is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.report.folder)))

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.busy_bar.setVisible(busy)
        self._update_buttons()

    def _update_buttons(self) -> None:
        if not hasattr(self, "open_button"):
            return  # still building
        idle = not self._busy
        for box in self.boxes.values():
            box.setEnabled(idle)
        self.output_edit.setEnabled(idle)
        self.choose_button.setEnabled(idle)
        self.export_button.setEnabled(idle and self.state.run_dir is not None and bool(self.selected_formats()))
        self.open_button.setEnabled(self.report is not None)
