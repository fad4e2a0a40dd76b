"""The start page: preset cards by kind of task, open a config or a previous run, recent items."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.pages.data import KIND_LABELS
from finetune_gui.gui.recent import recent_paths

GROUPS = [("image", "Image"), ("text", "Text"), ("lm", "GPT-style (language models)")]
CARD_COLUMNS = 3
RECENT_SHOWN = 6


def task_group(task: str) -> str:
    """The card group of a preset's task kind: image, text, lm, or invalid ('' = the file does not load)."""
    if task.startswith("image-"):
        return "image"
    if task.startswith("text-"):
        return "text"
    if task == "causal-lm":
        return "lm"
    return "invalid"


class PresetCard(QFrame):
    """A clickable card for one preset: title, one-line description, task and model."""

    clicked = Signal()

    def __init__(self, info, parent: QWidget | None = None):
        super().__init__(parent)
        self.info = info
        self.setObjectName(f"presetCard-{info.name}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor if info.valid else Qt.CursorShape.ForbiddenCursor)
        self.setEnabled(info.valid)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setStyleSheet(
            "PresetCard { border: 1px solid palette(mid); border-radius: 6px; background: palette(base); }"
            "PresetCard:hover, PresetCard:focus { border: 1px solid palette(highlight); }"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(3)
        title = QLabel(f"<b>{info.name}</b>" + ("" if info.builtin else "  <i>(yours)</i>"))
        layout.addWidget(title)
        description = QLabel(info.description or "(no description)")
        description.setWordWrap(True)
        description.setObjectName("presetDescription")
        description.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(description)
        if info.valid:
            meta = QLabel(f"{KIND_LABELS.get(info.task, info.task)} · {info.model}")
            meta.setStyleSheet("color: palette(dark); font-size: 11px;")
            meta.setWordWrap(True)
            layout.addWidget(meta)
        layout.addStretch(1)
        self.setToolTip(f"{info.description}\n\n{info.path}")

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(event.position().toPoint()):
            self.clicked.emit()
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self.clicked.emit()
            return
        super().keyPressEvent(event)


class StartPage(Page):
    """Pick a preset, open a saved setup or a previous run, or drop data on the window."""

    key = "start"
    title = "Start"
    open_path_requested = Signal(str)  # a config, a run folder or data; the main window's accept_path opens it

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.cards: dict[str, PresetCard] = {}
        self._preset_stamp: tuple = ()

        heading = QLabel("<h2>Fine-tune a model on your own data</h2>")
        hint = QLabel(
            "Pick a starting point below, or <b>drop a folder of images or a CSV/TXT file</b> anywhere "
            "on this window to use it as the data."
        )
        hint.setObjectName("dropHint")
        hint.setWordWrap(True)

        self._groups_host = QWidget()
        self._groups_layout = QVBoxLayout(self._groups_host)
        self._groups_layout.setContentsMargins(0, 0, 8, 0)
        presets_scroll = QScrollArea()
        presets_scroll.setObjectName("presetCards")
        presets_scroll.setWidgetResizable(True)
        presets_scroll.setFrameShape(QFrame.Shape.NoFrame)
        presets_scroll.setWidget(self._groups_host)

        side = QVBoxLayout()
        open_config = QPushButton("Open preset or config…")
        open_config.setObjectName("openConfig")
        open_config.setToolTip("Open a .toml setup saved earlier (Ctrl+O)")
        open_config.clicked.connect(self.choose_config)
        open_run = QPushButton("Open previous run…")
        open_run.setObjectName("openRun")
        open_run.setToolTip("Open a run folder to see its curves, evaluate it or resume it")
        open_run.clicked.connect(self.choose_run)
        side.addWidget(open_config)
        side.addWidget(open_run)
        self._recent_configs = self._recent_box("Recent setups", "recentConfigs")
        self._recent_runs = self._recent_box("Recent runs", "recentRuns")
        side.addWidget(self._recent_configs)
        side.addWidget(self._recent_runs)
        side.addWidget(self._runs_folder_box())
        side.addStretch(1)
        side_host = QWidget()
        side_host.setLayout(side)
        side_host.setFixedWidth(270)

        body = QHBoxLayout()
        body.addWidget(presets_scroll, 1)
        body.addWidget(side_host)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(hint)
        layout.addLayout(body, 1)

        self.refresh_presets()
        self.refresh_recent()
        self.show_runs_folder()

    # ------------------------------------------------------------ presets
    def refresh_presets(self) -> None:
        """(Re)build the cards when preset files were added, removed or changed."""
        from finetune_gui.presets import builtin_presets_dir, list_presets, user_presets_dir

        stamp = tuple(
            (p.name, p.stat().st_mtime)
            for folder in (builtin_presets_dir(), user_presets_dir())
            if folder.is_dir()
            for p in sorted(folder.glob("*.toml"))
        )
        if stamp == self._preset_stamp:
            return
        self._preset_stamp = stamp
        while self._groups_layout.count():
            widget = self._groups_layout.takeAt(0).widget()
            if widget is not None:
                widget.setParent(None)
                widget.deleteLater()
        self.cards = {}
        presets = list_presets()
        for group, caption in [*GROUPS, ("invalid", "Presets that cannot be opened")]:
            members = [p for p in presets if task_group(p.task) == group]
            if not members:
                continue
            box = QGroupBox(caption)
            box.setObjectName(f"presetGroup-{group}")
            grid = QGridLayout(box)
            for i, info in enumerate(members):
                card = PresetCard(info)
                card.clicked.connect(lambda p=info.path: self.load_preset(p))
                grid.addWidget(card, i // CARD_COLUMNS, i % CARD_COLUMNS)
                self.cards[info.name] = card
            for c in range(CARD_COLUMNS):
                grid.setColumnStretch(c, 1)
            self._groups_layout.addWidget(box)
        self._groups_layout.addStretch(1)

    def load_preset(self, path: str | Path) -> None:
        """Make the preset the current setup and go on to the data page."""
        from finetune_gui.config import ConfigError, load_config

        try:
            config = load_config(path)
        except ConfigError as e:
            self.error.emit("ConfigError", f"{path} cannot be opened:\n" + "\n".join(e.problems), "")
            return
        self.state.set_config(config, path)
        self.navigate.emit("data")

    # ------------------------------------------------------------ opening
    def _settings(self) -> QSettings:
        """The main window's settings when there is one (tests give it its own file), else the app's."""
        settings = getattr(self.window(), "settings", None)
        return settings if isinstance(settings, QSettings) else QSettings()

    def choose_config(self) -> None:
        from finetune_gui.presets import builtin_presets_dir

        start = str(self._settings().value("folders/configs", str(builtin_presets_dir())))
        path, _ = QFileDialog.getOpenFileName(self, "Open preset or config", start, "Config (*.toml)")
        if path:
            self._settings().setValue("folders/configs", str(Path(path).parent))
            self.open_path_requested.emit(path)

    def choose_run(self) -> None:
        start = str(self._settings().value("folders/runs", "") or self.state.runs_folder or "")
        path = QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if path:
            self._settings().setValue("folders/runs", str(Path(path).parent))
            self.open_path_requested.emit(path)

    # ------------------------------------------------------------ the runs folder
    def _runs_folder_box(self) -> QGroupBox:
        box = QGroupBox("Runs are saved in")
        self.runs_folder_label = QLabel()
        self.runs_folder_label.setObjectName("runsFolder")
        self.runs_folder_label.setWordWrap(True)
        self.runs_folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        change = QPushButton("Change…")
        change.setObjectName("changeRunsFolder")
        change.setToolTip("Choose the folder new runs are saved in (runs saved before stay where they are)")
        change.clicked.connect(self.choose_runs_folder)
        layout = QVBoxLayout(box)
        layout.addWidget(self.runs_folder_label)
        layout.addWidget(change, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    def show_runs_folder(self) -> None:
        folder = self.state.runs_folder
        self.runs_folder_label.setText(str(folder) if folder else "runs/ in the folder the app started from")
        self.runs_folder_label.setToolTip(str(folder or ""))

    def choose_runs_folder(self) -> None:
        from finetune_gui.gui.runs_folder import SETTING

        start = str(self.state.runs_folder or "")
        path = QFileDialog.getExistingDirectory(self, "Save new runs in", start)
        if path:
            self._settings().setValue(SETTING, path)
            self.state.runs_folder = Path(path)
            self.show_runs_folder()

    # ------------------------------------------------------------ recent items
    def _recent_box(self, caption: str, name: str) -> QGroupBox:
        box = QGroupBox(caption)
        box.setObjectName(name)
        QVBoxLayout(box).setSpacing(2)
        return box

    def refresh_recent(self) -> None:
        settings = self._settings()
        for box, key, empty in (
            (self._recent_configs, "recent/configs", "No setups opened yet."),
            (self._recent_runs, "recent/runs", "No runs yet."),
        ):
            layout = box.layout()
            while layout.count():
                widget = layout.takeAt(0).widget()
                if widget is not None:
                    widget.setParent(None)
                    widget.deleteLater()
            values = recent_paths(settings, key)
            for i, path in enumerate(values[:RECENT_SHOWN]):
                layout.addWidget(self._recent_button(str(path), f"{box.objectName()}-{i}"))
            if not values:
                note = QLabel(empty)
                note.setEnabled(False)
                layout.addWidget(note)

    def _recent_button(self, path: str, name: str) -> QPushButton:
        p = Path(path)
        exists = p.exists()
        label = p.stem if p.suffix == ".toml" else p.name
        button = QPushButton(label + ("" if exists else "  (missing)"))
        button.setObjectName(name)
        button.setFlat(True)
        button.setStyleSheet("text-align: left; padding: 3px 6px;")
        button.setToolTip(path if exists else f"{path}\nno longer exists")
        button.setEnabled(exists)
        button.clicked.connect(lambda _=False, p=path: self.open_path_requested.emit(p))
        return button

    def on_shown(self) -> None:
        self.refresh_presets()
        self.refresh_recent()
        self.show_runs_folder()
