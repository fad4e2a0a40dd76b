"""The main window: a sidebar of steps, one page per step, menus for presets, runs and the CLI command."""

from __future__ import annotations

import importlib
import shlex
from html import escape
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Slot
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from finetune_gui.gui.dialogs import error_box, is_expected, title_for
from finetune_gui.gui.model_readiness import ModelReadiness
from finetune_gui.gui.recent import recent_paths, remember_path
from finetune_gui.gui.runs_folder import runs_folder
from finetune_gui.gui.state import AppState
from finetune_gui.gui.wording import reword
from finetune_gui.gui.worker import WorkerBridge

PAGES = [
    ("start", "StartPage"),
    ("data", "DataPage"),
    ("model", "ModelPage"),
    ("augment", "AugmentPage"),
    ("setup", "SetupPage"),
    ("monitor", "MonitorPage"),
    ("evaluate", "EvaluatePage"),
    ("try_it", "TryItPage"),
    ("export", "ExportPage"),
    ("runs", "RunsPage"),
]
MIN_SIZE = (1100, 700)
SEPARATE_PROCESS = "training/separateProcess"  # QSettings: runs go in a child process (Training setup page)


class MainWindow(QMainWindow):
    def __init__(self, state: AppState | None = None, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("finetune-gui")
        self.setMinimumSize(*MIN_SIZE)
        self.setAcceptDrops(True)
        self.settings = settings or QSettings()
        self.state = state or AppState(parent=self)
        self.bridge = WorkerBridge(self)
        self.state.recent_model_folders = recent_paths(self.settings, "recent/modelFolders")
        self.state.runs_folder = runs_folder(self.settings)
        self.bridge.separate_process = self.settings.value(SEPARATE_PROCESS, False, type=bool)
        self.state.model_folder_opened.connect(lambda path: self._remember("recent/modelFolders", path))
        self.model_readiness = ModelReadiness(self.state, self.bridge, self)
        self.pages: dict[str, QWidget] = {}
        self._closing = False

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(170)
        self.stack = QStackedWidget()
        for module_name, class_name in PAGES:
            cls = getattr(importlib.import_module(f"finetune_gui.gui.pages.{module_name}"), class_name)
            page = cls(self.state, self.bridge)
            page.navigate.connect(self.show_page)
            page.error.connect(self.show_error)
            if hasattr(page, "open_path_requested"):  # the start page's open buttons and recent items
                page.open_path_requested.connect(self.accept_path)
            if hasattr(page, "resume_run_requested"):  # the runs page's Open and Resume
                page.open_run_requested.connect(self.open_run)
                page.resume_run_requested.connect(self.resume_run)
            self.pages[page.key] = page
            self.stack.addWidget(page)
            self.sidebar.addItem(page.title)
        self.sidebar.currentRowChanged.connect(self._row_changed)
        self.pages["monitor"].start_requested.connect(self.start_training)
        for key in ("monitor", "setup"):  # Quick baseline is on both pages
            self.pages[key].baseline_requested.connect(self.start_baseline)
        self.pages["setup"].separate_process_box.toggled.connect(
            lambda on: self.settings.setValue(SEPARATE_PROCESS, on)
        )
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self.bridge.run_failed.connect(self._run_failed)
        self.bridge.training_changed.connect(self._training_changed)
        self.bridge.paused_changed.connect(self._paused_changed)
        self.state.notice.connect(lambda text: self.statusBar().showMessage(text, 20_000))
        self.state.config_path_changed.connect(self._config_path_changed)
        self.state.run_changed.connect(lambda path: path and self._remember("recent/runs", path))
        self.statusBar().showMessage("Ready")
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        self.sidebar.setCurrentRow(0)

    # ------------------------------------------------------------ navigation
    @Slot(str)
    def show_page(self, key: str) -> None:
        keys = list(self.pages)
        if key in keys:
            self.sidebar.setCurrentRow(keys.index(key))

    def _row_changed(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        page = self.stack.currentWidget()
        if hasattr(page, "on_shown"):
            page.on_shown()

    def current_page_key(self) -> str:
        return self.stack.currentWidget().key

    # ------------------------------------------------------------ menus
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open preset or config…", QKeySequence.StandardKey.Open, self.open_config_dialog)
        self._action(file_menu, "Open &run folder…", "Ctrl+Shift+O", self.open_run_dialog)
        self._action(file_menu, "&Save as preset…", QKeySequence.StandardKey.Save, self.save_preset_dialog)
        self._action(file_menu, "Copy &CLI command", "Ctrl+Shift+C", self.copy_cli_command)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", "Ctrl+Q", self.close)
        run_menu = self.menuBar().addMenu("&Run")
        self.train_action = self._action(run_menu, "&Train", "Ctrl+R", self.start_training)
        self.pause_action = self._action(run_menu, "&Pause / continue", "Ctrl+P", self.toggle_pause)
        self.stop_action = self._action(run_menu, "&Stop", "Ctrl+.", self.bridge.stop)
        self._training_changed(False)
        go_menu = self.menuBar().addMenu("&Go")
        for i in range(len(PAGES)):
            page = list(self.pages.values())[i]
            # triggered(bool) would fill a lone keyword argument with `checked`; keep the key out of its way
            self._action(
                go_menu, page.title, f"Ctrl+{(i + 1) % 10}", lambda _checked=False, k=page.key: self.show_page(k)
            )

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _config_path_changed(self, path: str) -> None:
        self._update_title()
        if path:
            self._remember("recent/configs", path)

    def _update_title(self) -> None:
        path = self.state.config_path
        self.setWindowTitle(f"finetune-gui — {path.name}" if path else "finetune-gui")

    # ------------------------------------------------------------ actions
    def open_config(self, path: str | Path) -> bool:
        from finetune_gui.config import ConfigError, load_config

        try:
            config = load_config(path)
        except ConfigError as e:
            self.show_error("ConfigError", f"{path} cannot be opened:\n" + "\n".join(e.problems))
            return False
        self.state.set_config(config, path)
        self.statusBar().showMessage(f"Opened {path}")
        return True

    def open_config_dialog(self) -> None:
        from finetune_gui.presets import builtin_presets_dir

        start = self.settings.value("folders/configs", str(builtin_presets_dir()))
        path, _ = QFileDialog.getOpenFileName(self, "Open preset or config", start, "Config (*.toml)")
        if path:
            self.settings.setValue("folders/configs", str(Path(path).parent))
            self.open_config(path)

    def open_run(self, run_dir: str | Path) -> bool:
        from finetune_gui.config import ConfigError, load_config

        run_dir = Path(run_dir)
        try:
            config = load_config(run_dir / "config.toml")
        except ConfigError as e:
            self.show_error(
                "RunStateError", f"{run_dir} is not a run folder that can be opened:\n" + "\n".join(e.problems)
            )
            return False
        self.state.set_config(config, None)
        self.state.set_run_dir(run_dir)
        self._remember("recent/runs", str(run_dir))
        self.show_page("monitor")
        return True

    def resume_run(self, run_dir: str | Path) -> None:
        """Open a stopped run on the Train page and continue it from its newest checkpoint."""
        if not self.bridge.is_training and self.open_run(run_dir):
            self.pages["monitor"].resume_run()

    def open_run_dialog(self) -> None:
        self.pages["start"].choose_run()

    def save_preset_dialog(self) -> None:
        from finetune_gui.presets import save_user_preset

        name, ok = QInputDialog.getText(
            self, "Save as preset", "Preset name (letters, digits, - and _):", text=self.state.config.name
        )
        if not ok or not name:
            return
        try:
            path = save_user_preset(self.state.config, name)
        except FileExistsError:
            answer = QMessageBox.question(self, "Replace preset?", f"A preset named '{name}' exists. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            path = save_user_preset(self.state.config, name, overwrite=True)
        except Exception as e:  # noqa: BLE001 - a bad name or an unwritable folder: tell the user
            self.show_error(type(e).__name__, str(e))
            return
        self.statusBar().showMessage(f"Saved preset {path}")

    def cli_command(self) -> str:
        """The headless command that trains what the GUI is set up to train."""
        from finetune_gui.config import RunConfig

        defaults = RunConfig().to_dict()
        current = self.state.config.to_dict()
        sets = []
        base = None
        if self.state.config_path is not None:
            from finetune_gui.config import load_config

            base = load_config(self.state.config_path).to_dict()
        reference = base or defaults
        for section, values in current.items():
            if isinstance(values, dict):
                for key, value in _flatten(values):
                    if _lookup(reference, section, key) != value:
                        sets.append(f"{section}.{key}={_toml_value(value, section, key, self.state.config)}")
            elif reference.get(section) != values:
                sets.append(f"{section}={_toml_value(values, section, '', self.state.config)}")
        target = str(self.state.config_path) if self.state.config_path else "presets/demo-fashion.toml"
        cmd = ["finetune-gui", "train", target]
        if base is None:
            cmd = ["finetune-gui", "train", "CONFIG.toml"]  # a fresh setup is best saved first
        for s in sets:
            cmd += ["--set", s]
        output = self.state.output_dir()
        if output is not None:  # where the app keeps runs, so the command's run lands beside the app's
            cmd += ["--output", str(output)]
        return shlex.join(cmd)

    def copy_cli_command(self) -> None:
        cmd = self.cli_command()
        QGuiApplication.clipboard().setText(cmd)
        self.statusBar().showMessage("Copied: " + cmd, 10000)

    def start_training(self) -> None:
        """Start a run on the Train page; data that does not look fit to train on asks first."""
        self._after_the_data_check(self._start_run, "Train anyway")

    def start_baseline(self) -> None:
        """Fit the quick baseline on the Train page; data that does not look fit to train on asks first."""
        self._after_the_data_check(self._start_baseline, "Fit the baseline anyway")

    def _after_the_data_check(self, go, anyway: str) -> None:
        """Call `go` now, or, when the Data page doubts the data, once the person answers `anyway`; the other
        answer returns to the Data page and starts nothing."""
        if self.bridge.is_training:
            return
        doubt = self.pages["data"].doubt()
        if doubt is None:
            go()
            return
        box = QMessageBox(self)  # opened, not exec()'d: the window goes on drawing, and tests can answer it
        box.setObjectName("trainAnywayQuestion")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Train on this data?")
        box.setText(f"<b>{doubt.headline}.</b>" + "".join(f"<br>• {escape(r)}" for r in doubt.reasons))
        box.setInformativeText(f"{escape(doubt.todo)}<br><br>{escape(anyway)}, or go back to the Data page?")
        accept = box.addButton(anyway, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(box.addButton("Go back to the data", QMessageBox.ButtonRole.RejectRole))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _: go() if box.clickedButton() is accept else self.show_page("data"))
        box.open()

    def _start_run(self) -> None:
        if self.bridge.is_training:
            return
        self.show_page("monitor")
        self.pages["monitor"].start()

    def _start_baseline(self) -> None:
        if self.bridge.is_training:
            return
        self.show_page("monitor")
        self.pages["monitor"].start_baseline()

    def toggle_pause(self) -> None:
        if self.bridge.is_paused:
            self.bridge.resume()
        else:
            self.bridge.pause()

    def _training_changed(self, training: bool) -> None:
        self.train_action.setEnabled(not training)
        self.pause_action.setEnabled(training and not self.bridge.pause_unavailable)
        self.stop_action.setEnabled(training)
        if training or not self.statusBar().currentMessage().startswith("The run failed"):
            self.statusBar().showMessage("Training…" if training else "Ready")

    def _paused_changed(self, paused: bool) -> None:
        if self.bridge.is_training:
            self.statusBar().showMessage("Paused: Continue on the Train page goes on" if paused else "Training…")

    def _run_failed(self, e) -> None:
        """The Train page says why a run failed; a dialog only for a fault of the app (with its details)."""
        if is_expected(e.error_type):
            said = reword(e.message, self).splitlines()[0] if e.message else ""
            self.statusBar().showMessage(f"The run failed: {said}", 30_000)
        else:
            self.show_error(e.error_type, e.message, e.details)

    @Slot(str, str, str)
    def show_error(self, error_type: str, message: str, details: str = "") -> None:
        error_box(self, title_for(error_type), reword(message, self), details)

    def _remember(self, key: str, value: str) -> None:
        remember_path(self.settings, key, value)

    # ------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.accept_path(urls[0])

    def accept_path(self, path: str) -> None:
        """A dropped file or folder: a config opens, a run folder opens, anything else becomes the data."""
        p = Path(path)
        if p.suffix == ".toml":
            self.open_config(p)
        elif p.is_dir() and (p / "config.toml").exists() and (p / "checkpoints").is_dir():
            self.open_run(p)
        else:
            self.state.set_value("data", "path", str(p.resolve()))
            self.show_page("data")

    # ------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        if self.bridge.is_training and not self._closing:
            answer = QMessageBox.question(
                self,
                "Training is running",
                "A run is going. Stop it and quit? A checkpoint is saved, and you can resume the run later.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        self._closing = True
        self.statusBar().showMessage("Stopping workers…")
        self.bridge.shutdown()
        self.settings.setValue("window/geometry", self.saveGeometry())
        event.accept()


def _flatten(values: dict, prefix: str = ""):
    for k, v in values.items():
        if isinstance(v, dict):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _lookup(data: dict, section: str, key: str):
    node = data.get(section, {})
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return object()
        node = node[part]
    return node


def _toml_value(value, section: str, key: str, config) -> str:
    import tomli_w

    text = tomli_w.dumps({"v": value}).strip()[4:]
    return text
