"""The Runs page: every run in the runs folder (and in the folders of recent runs) in one table to sort and
search. Select runs to compare them: curves, config differences and diagnoses side by side. Open, resume or
delete (to the trash, after asking) from the table.

Run folders are read in worker threads (core/run_index.py, core/run_compare.py): the page knows runs only by
their files, so a run of the CLI, or of an older version, compares like one made here.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path

from PySide6.QtCore import QFile, QItemSelectionModel, QSettings, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.run_table import PATH_ROLE, RunFilter, RunTableModel, table_csv
from finetune_gui.gui.recent import recent_paths

MAX_COMPARED = 8
SELECTION_SETTLE_MS = 120  # a drag over rows compares once, when it settles
NOTHING_SELECTED = "Select 2 to 8 runs (Ctrl+click or Shift+click) to compare them here."


def load_runs(folders: list[str]):
    from finetune_gui.core.run_index import list_runs

    return list_runs(folders)


def load_histories(paths: list[str]):
    from finetune_gui.core.run_compare import load_histories as load

    return load(paths)


class RunsPage(Page):
    key = "runs"
    title = "Runs"
    open_run_requested = Signal(str)  # the main window opens the run on the Train page
    resume_run_requested = Signal(str)  # … and resumes it there

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self._index_generation = 0
        self._compare_generation = 0
        self._histories: dict[str, object] = {}  # run path -> RunHistory, read once per refresh
        self._colours: dict[str, str] = {}
        self._live_run: str | None = None
        self.loading = False
        self.comparing = False
        self._build()
        bridge.run_started.connect(self._on_run_started)
        bridge.training_changed.connect(self._on_training_changed)

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.search = QLineEdit()
        self.search.setObjectName("runsSearch")
        self.search.setPlaceholderText("Search runs by name, status, task, model…")
        self.search.setClearButtonEnabled(True)
        self.refresh_button = self._button("Refresh", "runsRefresh", self.refresh, "Read the runs folders again")
        self.count_label = QLabel()
        self.count_label.setObjectName("runsCount")
        self.open_button = self._button("Open", "runsOpen", self.open_selected, "Show the run on the Train page")
        self.resume_button = self._button(
            "Resume", "runsResume", self.resume_selected, "Continue the stopped run from its newest checkpoint"
        )
        self.delete_button = self._button(
            "Delete…", "runsDelete", self.delete_selected, "Move the selected run folders to the trash, after asking"
        )
        self.csv_button = self._button("Export CSV…", "runsCsv", self.export_csv, "Save the table as shown as CSV")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.count_label)
        top.addStretch(1)
        for b in (self.open_button, self.resume_button, self.delete_button, self.csv_button):
            top.addWidget(b)
        self.model = RunTableModel(self)
        self.proxy = RunFilter(self)
        self.proxy.setSourceModel(self.model)
        self.search.textChanged.connect(self.proxy.set_text)
        self.table = QTableView()
        self.table.setObjectName("runsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(8, Qt.SortOrder.DescendingOrder)  # newest first
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Ctrl+click or Shift+click to select 2 to 8 runs and compare them below")
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.message = QLabel()
        self.message.setObjectName("runsMessage")
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.compare = None  # the ComparePanel, made when first needed (it loads pyqtgraph)
        self._split = QSplitter(Qt.Orientation.Vertical)
        self._split.addWidget(self.table)
        self._split.addWidget(QWidget())
        self._split.setCollapsible(0, False)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self._split, 1)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SELECTION_SETTLE_MS)
        self._settle.timeout.connect(self._compare_selected)
        self._update_buttons()

    def _button(self, text: str, name: str, slot, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(lambda _checked=False: slot())
        return button

    # ------------------------------------------------------------ reading runs

    def on_shown(self) -> None:
        self.ensure_compare()
        self.refresh()

    def ensure_compare(self):
        """The comparison panel (made on first use: it loads pyqtgraph)."""
        if self.compare is None:
            from finetune_gui.gui.panels.run_compare import ComparePanel

            self.compare = ComparePanel()
            self.compare.show_hint(NOTHING_SELECTED)
            self.compare.curves.png_button.clicked.connect(self.export_png)
            self._split.replaceWidget(1, self.compare).deleteLater()
            self._split.setSizes([260, 540])  # room for eight rows; the rest for the comparison
        return self.compare

    def folders(self) -> list[str]:
        """The runs folder, then the folders of recent runs outside it."""
        found = [str(self.state.runs_folder)] if self.state.runs_folder else []
        for run in recent_paths(self._settings(), "recent/runs"):
            parent = str(Path(run).parent)
            if parent not in found:
                found.append(parent)
        return found

    def refresh(self) -> None:
        """Read every run again (in a worker); the selection is kept where its runs still exist."""
        self._index_generation += 1
        self.loading = True
        self.count_label.setText("Reading runs…")
        self.refresh_button.setEnabled(False)
        folders = self.folders()
        done = partial(self._show_index, self._index_generation, folders)
        self.bridge.run_task(load_runs, folders, on_result=done, on_error=self._index_failed)

    def _show_index(self, generation: int, folders: list[str], index) -> None:
        if generation != self._index_generation:
            return  # a newer refresh is on its way
        self.loading = False
        self.refresh_button.setEnabled(True)
        selected = self.selected_paths()
        self._histories.clear()
        self.model.set_runs(index.runs)
        self.count_label.setText(f"{len(index.runs)} run{'s' if len(index.runs) != 1 else ''}")
        self.count_label.setToolTip("Read from:\n" + "\n".join(folders))
        self._say("\n".join(f"Not listed: {p}" for p in index.problems))
        self._select(selected)
        self._compare_selected()

    def _index_failed(self, error_type: str, message: str, details: str) -> None:
        self.loading = False
        self.refresh_button.setEnabled(True)
        self.count_label.setText("")
        self._say(f"The runs could not be read: {message}")

    # ------------------------------------------------------------ selection and comparing

    def selected_paths(self) -> list[str]:
        """The selected runs' folders, in the order the table shows them."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return self.proxy.paths(rows)

    def select_paths(self, paths: list[str]) -> None:
        """Select these runs (as Ctrl+clicks would)."""
        self._select(paths)

    def _select(self, paths: list[str]) -> None:
        selection = self.table.selectionModel()
        selection.clearSelection()
        flags = QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(PATH_ROLE) in paths:
                selection.select(index, flags)

    def _selection_changed(self, *_args) -> None:
        self._update_buttons()
        self._settle.start()

    def _compare_selected(self) -> None:
        self._settle.stop()
        paths = self.selected_paths()
        compare = self.ensure_compare()
        if not paths:
            compare.show_hint(NOTHING_SELECTED)
            return
        if len(paths) > MAX_COMPARED:
            compare.show_hint(f"Compare up to {MAX_COMPARED} runs at once: {len(paths)} are selected.")
            return
        from finetune_gui.gui.widgets.run_curves import assign_colours

        self._colours = assign_colours(self._colours, paths)
        missing = [p for p in paths if p not in self._histories]
        self._compare_generation += 1
        if not missing:
            self._show_comparison(self._compare_generation, paths, [])
            return
        self.comparing = True
        done = partial(self._show_comparison, self._compare_generation, paths)
        self.bridge.run_task(load_histories, missing, on_result=done, on_error=self._compare_failed)

    def _show_comparison(self, generation: int, paths: list[str], histories: list) -> None:
        for h in histories:
            self._histories[h.summary.path] = h
        if generation != self._compare_generation:
            return  # the selection changed meanwhile
        self.comparing = False
        self.ensure_compare().set_runs([self._histories[p] for p in paths if p in self._histories], self._colours)

    def _compare_failed(self, error_type: str, message: str, details: str) -> None:
        self.comparing = False
        self.ensure_compare().show_hint(f"These runs cannot be compared: {message}")

    # ------------------------------------------------------------ actions

    def _update_buttons(self) -> None:
        runs = self._selected_runs()
        one = runs[0] if len(runs) == 1 else None
        self.open_button.setEnabled(one is not None)
        can_resume = one is not None and one.resumable and not one.training and not self.bridge.is_training
        self.resume_button.setEnabled(can_resume)
        self.delete_button.setEnabled(bool(runs))

    def _selected_runs(self) -> list:
        by_path = {r.path: r for r in self.model.runs}
        return [by_path[p] for p in self.selected_paths() if p in by_path]

    def open_selected(self) -> None:
        runs = self._selected_runs()
        if len(runs) == 1:
            self.open_run_requested.emit(runs[0].path)

    def resume_selected(self) -> None:
        runs = self._selected_runs()
        if len(runs) == 1 and runs[0].resumable and not self.bridge.is_training:
            self.resume_run_requested.emit(runs[0].path)

    def delete_selected(self) -> None:
        """Move the selected runs to the trash after asking; a run that is training is never touched."""
        runs = self._selected_runs()
        busy = [r for r in runs if self._is_training(r)]
        runs = [r for r in runs if r not in busy]
        if busy:
            self._say("Not deleted, still training: " + ", ".join(r.name for r in busy))
        if not runs:
            return
        names = "\n".join(f"  {r.name}" for r in runs[:10]) + (
            f"\n  … and {len(runs) - 10} more" if len(runs) > 10 else ""
        )
        answer = QMessageBox.question(
            self,
            "Delete runs?",
            f"Move {len(runs)} run folder{'s' if len(runs) > 1 else ''} to the trash?\n{names}\n\n"
            "Their checkpoints and weights go with them; you can restore them from the trash.",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        gone, kept = set(), []
        data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
        with contextlib.suppress(OSError):  # Qt finds no trash without the folder that holds it (~/.local/share)
            Path(data).mkdir(parents=True, exist_ok=True)
        for r in runs:
            moved = QFile.moveToTrash(r.path)  # bool, or (bool, path in the trash) in some PySide6 versions
            (gone.add(r.path) if (moved[0] if isinstance(moved, tuple) else moved) else kept.append(r.path))
        self.model.remove_paths(gone)
        for path in gone:
            self._histories.pop(path, None)
        if kept:
            self.error.emit(
                "RunStateError",
                "Not deleted: these folders could not be moved to the trash (this system may have no trash for "
                "them). Delete them yourself if you are sure:\n" + "\n".join(kept),
                "",
            )
        self._say(f"Moved {len(gone)} run{'s' if len(gone) != 1 else ''} to the trash." if gone else "")
        self.count_label.setText(f"{len(self.model.runs)} run{'s' if len(self.model.runs) != 1 else ''}")

    def _is_training(self, run) -> bool:
        live = self._live_run is not None and Path(self._live_run).resolve() == Path(run.path).resolve()
        return run.training or (live and self.bridge.is_training)

    def export_csv(self) -> None:
        start = str(Path(str(self.state.runs_folder or Path.home())) / "runs.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export the runs table", start, "CSV (*.csv)")
        if path:
            self._write(path, lambda p: Path(p).write_text(table_csv(self.proxy), encoding="utf-8") or True)

    def export_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the plot", str(Path.home() / "runs.png"), "PNG (*.png)")
        if path:
            self._write(path, self.ensure_compare().curves.save_png)

    def _write(self, path: str, write) -> None:
        try:
            ok = write(path)
        except OSError as e:
            ok, why = False, e.strerror or str(e)
        else:
            why = "the picture could not be written"
        self._say(f"Saved {path}" if ok else f"Could not save {path}: {why}")

    # ------------------------------------------------------------ helpers

    def _on_run_started(self, e) -> None:
        self._live_run = e.run_dir
        self._update_buttons()

    def _on_training_changed(self, training: bool) -> None:
        if not training:
            self._live_run = None
            if self.isVisible():  # a run ended while the table was shown: its row has new values
                self.refresh()
        self._update_buttons()

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def _settings(self) -> QSettings:
        """The main window's settings when there is one (tests give it its own file), else the app's."""
        settings = getattr(self.window(), "settings", None)
        return settings if isinstance(settings, QSettings) else QSettings()
