"""The model page: pick a backbone from the catalog (or a local folder / weights file), see its layers with
freeze checkboxes and a running total of trainable parameters, and set freezing, dropout and LoRA.

The catalog (it imports torchvision) and the layer tree (it builds the model) come from worker threads via
`bridge.run_task`; only plain data (catalog rows, a ModuleNode tree) reaches the GUI thread. Which modules
train is worked out from the config by core.models.freezing.planned_trainable, so the boxes and the total
follow every change at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import LoraConfig, TaskKind
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.pages.setup import widen_number_editors
from finetune_gui.gui.widgets.config_form import ConfigForm
from finetune_gui.gui.widgets.layer_tree import LayerTree
from finetune_gui.paths import expand_user

TREE_DEBOUNCE_MS = 300
CATALOG_REFRESH_S = 60  # badges are read again when the page shows after this long (a run may have downloaded)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt")
CATALOG_COLUMNS = ("Name", "Family", "Params", "Input", "Licence", "Status")
BADGES = {  # availability -> (text, colour)
    "cached": ("● cached", "#2e8b57"),
    "local": ("■ local", "#2a6fb0"),
    "needs-download": ("↓ download", "#c77c02"),
}
STRATEGY_TEXT = {
    "none": "Everything trains.",
    "head-only": "Only the head trains; the backbone stays as pretrained.",
}


# ---------------------------------------------------------------- worker jobs (off the main thread)


@dataclass
class ModelOutline:
    """What the page needs to know about a built model; plain data, no torch objects."""

    tree: Any  # core.models.freezing.ModuleNode
    head: list[str]
    blocks: list[str]
    lora: bool
    description: str
    warnings: list[str] = field(default_factory=list)


def outline_job(config, num_outputs: int) -> ModelOutline:
    """Build the model as training would, read its module tree, and drop the model here in the worker."""
    import gc

    from finetune_gui.core.models import build_model
    from finetune_gui.core.models.freezing import module_tree

    bundle = build_model(config, num_outputs)
    outline = ModelOutline(
        tree=module_tree(bundle.model),
        head=list(bundle.head),
        blocks=list(bundle.blocks),
        lora=bundle.uses_lora,
        description=bundle.description,
        warnings=list(bundle.warnings),
    )
    del bundle
    gc.collect()
    return outline


def catalog_job() -> list[dict[str, Any]]:
    """Every catalog entry as a plain dict, with whether its weights are here (reads the caches on disk)."""
    from finetune_gui.core.models.catalog import availability, entries

    return [
        {
            "name": e.name,
            "family": e.family,
            "tasks": [t.value for t in e.tasks],
            "params_m": e.params_m,
            "input_size": e.input_size,
            "licence": e.licence,
            "description": e.description,
            "badge": availability(e),
        }
        for e in entries()
    ]


# ---------------------------------------------------------------- plain helpers


def num_outputs_for(kind: TaskKind, scan) -> int:
    """Outputs of the head as the engine will make it: labels found by the scan (2 until there is one)."""
    if kind.is_regression:
        return 1
    if kind == TaskKind.CAUSAL_LM:
        return 0
    labels = getattr(scan, "labels", None) or {}
    return len(labels) if labels else 2


def is_huggingface(config) -> bool:
    """Whether config.model is a Hugging Face model (LoRA applies) — same rule as core.models.resolve_source."""
    from finetune_gui.core.models import resolve_source  # light: no torch at import

    try:
        return resolve_source(config) == "huggingface"
    except Exception:  # noqa: BLE001 - a mismatched source is shown by the tree's load error
        return False


def short_licence(text: str) -> str:
    return text.split(" (", 1)[0]


class CatalogFilter(QSortFilterProxyModel):
    """Rows for the current task kind whose name, family, licence or description contain the search text."""

    TASKS_ROLE = Qt.ItemDataRole.UserRole + 2
    SEARCH_ROLE = Qt.ItemDataRole.UserRole + 3

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task = ""
        self.text = ""

    def set_task(self, task: str) -> None:
        self._refilter(task=task)

    def set_text(self, text: str) -> None:
        self._refilter(text=text.strip().lower())

    def _refilter(self, **values: str) -> None:
        modern = hasattr(self, "beginFilterChange")  # Qt >= 6.10, where invalidateFilter is deprecated
        if modern:
            self.beginFilterChange()
        for name, value in values.items():
            setattr(self, name, value)
        if modern:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:  # pragma: no cover - older Qt
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:
        index = self.sourceModel().index(row, 0, parent)
        if self.task and self.task not in (index.data(self.TASKS_ROLE) or []):
            return False
        return not self.text or all(word in (index.data(self.SEARCH_ROLE) or "") for word in self.text.split())


# ---------------------------------------------------------------- LoRA knobs


class LoraBox(QGroupBox):
    """model.lora: a checkable group (the checkbox is lora.enabled) with rank, alpha, dropout and targets."""

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__("LoRA adapters (Hugging Face models)", parent)
        self.state = state
        self.setObjectName("loraBox")
        self.setCheckable(True)
        fields = LoraConfig.model_fields
        self.setToolTip(fields["enabled"].description or "")
        self.r = QSpinBox()
        self.r.setRange(1, 256)
        self.alpha = QSpinBox()
        self.alpha.setRange(1, 1024)
        self.dropout = QDoubleSpinBox()
        self.dropout.setRange(0.0, 0.99)
        self.dropout.setSingleStep(0.05)
        self.targets = QLineEdit()
        self.targets.setPlaceholderText("empty = the attention projections")
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setWordWrap(True)
        self.error.hide()
        form = QFormLayout(self)
        for key, label, editor in (
            ("r", "Rank r", self.r),
            ("alpha", "Alpha", self.alpha),
            ("dropout", "Dropout", self.dropout),
            ("target_modules", "Target modules", self.targets),
        ):
            editor.setObjectName(f"lora.{key}")
            editor.setToolTip(fields[key].description or "")
            form.addRow(label, editor)
        form.addRow(self.error)
        self._loading = False
        self.toggled.connect(lambda on: self._commit("enabled", on))
        self.r.valueChanged.connect(lambda v: self._commit("r", v))
        self.alpha.valueChanged.connect(lambda v: self._commit("alpha", v))
        self.dropout.valueChanged.connect(lambda v: self._commit("dropout", v))
        self.targets.editingFinished.connect(
            lambda: self._commit("target_modules", [t.strip() for t in self.targets.text().split(",") if t.strip()])
        )
        self.refresh()

    def _commit(self, key: str, value) -> None:
        if self._loading:
            return
        message = self.state.set_value("model", f"lora.{key}", value)
        self.error.setText(message or "")
        self.error.setVisible(bool(message))

    def refresh(self) -> None:
        lora = self.state.config.model.lora
        self._loading = True
        try:
            self.setChecked(lora.enabled)
            self.r.setValue(lora.r)
            self.alpha.setValue(lora.alpha)
            self.dropout.setValue(lora.dropout)
            text = ", ".join(lora.target_modules)
            if self.targets.text() != text:
                self.targets.setText(text)
        finally:
            self._loading = False


# ---------------------------------------------------------------- the page


class ModelPage(Page):
    key = "model"
    title = "Model"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self._catalog_rows: list[dict[str, Any]] = []
        self._catalog_busy = False
        self._catalog_time = 0.0
        self._outline: ModelOutline | None = None
        self._plan: dict[str, int] = {}
        self._loaded_key: tuple | None = None  # structure the tree (or its error) belongs to
        self._tree_busy = False
        self._selecting = False
        self._tree_timer = QTimer(self)
        self._tree_timer.setSingleShot(True)
        self._tree_timer.setInterval(TREE_DEBOUNCE_MS)
        self._tree_timer.timeout.connect(self.load_tree)
        self._build()
        state.changed.connect(self._on_changed)
        state.scan_changed.connect(lambda _: self._schedule_tree())
        self._on_changed("")

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        heading = QLabel("<h2>Model</h2>")
        self.current_label = QLabel()
        self.current_label.setObjectName("currentModel")
        self.current_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.current_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # long paths
        self.current_label.setMinimumWidth(100)
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addSpacing(16)
        top.addWidget(self.current_label, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_catalog())
        splitter.addWidget(self._build_layers())
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([560, 520])
        splitter.setChildrenCollapsible(False)

        backbone = QGroupBox("Training the backbone")
        backbone_layout = QVBoxLayout(backbone)
        self.backbone_form = ConfigForm(
            self.state, "model", ["gradual_unfreeze_every", "backbone_lr_mult", "head_dropout", "backbone_dropout"]
        )
        self.backbone_form.layout().setContentsMargins(0, 0, 0, 0)
        widen_number_editors(self.backbone_form)
        backbone_layout.addWidget(self.backbone_form)
        self.lora_box = LoraBox(self.state)
        bottom = QHBoxLayout()
        bottom.addWidget(backbone, 1)
        bottom.addWidget(self.lora_box, 1)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)

    def _build_catalog(self) -> QWidget:
        box = QGroupBox("Catalog")
        self.search = QLineEdit()
        self.search.setObjectName("catalogSearch")
        self.search.setPlaceholderText("Search by name, family, licence or description…")
        self.search.setClearButtonEnabled(True)
        self.catalog_model = QStandardItemModel(0, len(CATALOG_COLUMNS), self)
        self.catalog_model.setHorizontalHeaderLabels(list(CATALOG_COLUMNS))
        self.catalog_filter = CatalogFilter(self)
        self.catalog_filter.setSourceModel(self.catalog_model)
        self.catalog = QTableView()
        self.catalog.setObjectName("catalogTable")
        self.catalog.setModel(self.catalog_filter)
        self.catalog.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.catalog.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.catalog.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.catalog.verticalHeader().hide()
        self.catalog.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.catalog.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.catalog.setWordWrap(False)
        self.catalog.setAlternatingRowColors(True)
        header = self.catalog.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.catalog.selectionModel().currentRowChanged.connect(self._catalog_row_changed)
        self.search.textChanged.connect(self.catalog_filter.set_text)
        self.catalog_status = QLabel("Loading the catalog…")
        self.catalog_status.setObjectName("catalogStatus")
        self.catalog_status.setStyleSheet("color: palette(dark);")
        self.catalog_status.setWordWrap(True)

        self.open_local_button = QToolButton()
        self.open_local_button.setObjectName("openLocal")
        self.open_local_button.setText("Open a local folder or weights file…")
        self.open_local_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.open_local_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        menu = QMenu(self.open_local_button)
        menu.addAction("Hugging Face model folder…", self._choose_folder)
        menu.addAction("Weights file (.safetensors, .pth)…", self._choose_weights_file)
        self.open_local_button.setMenu(menu)
        self.weights_file_label = QLabel()
        self.weights_file_label.setObjectName("weightsFile")
        self.weights_file_label.setWordWrap(True)
        self.clear_weights_button = QPushButton("Clear")
        self.clear_weights_button.setObjectName("clearWeightsFile")
        self.clear_weights_button.setToolTip("Start from the model's own pretrained weights again")
        self.clear_weights_button.clicked.connect(lambda: self.state.set_value("model", "weights_path", ""))
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.open_local_button)
        weights_row.addWidget(self.weights_file_label, 1)
        weights_row.addWidget(self.clear_weights_button)
        self.weights_form = ConfigForm(
            self.state, "model", ["pretrained", "weights", "allow_random_init", "trust_remote_code"]
        )
        self.weights_form.layout().setContentsMargins(0, 0, 0, 0)

        layout = QVBoxLayout(box)
        layout.addWidget(self.search)
        layout.addWidget(self.catalog, 1)
        layout.addWidget(self.catalog_status)
        layout.addLayout(weights_row)
        layout.addWidget(self.weights_form)
        return box

    def _build_layers(self) -> QWidget:
        box = QGroupBox("Layers and freezing")
        self.head_only_button = QPushButton("Head only")
        self.head_only_button.setObjectName("headOnly")
        self.head_only_button.setToolTip("Train only the new head; every backbone weight stays fixed.")
        self.head_only_button.clicked.connect(self.freeze_head_only)
        self.last_n_spin = QSpinBox()
        self.last_n_spin.setObjectName("lastN")
        self.last_n_spin.setRange(0, 1000)
        self.last_n_spin.setPrefix("N = ")
        self.last_n_spin.setToolTip("How many blocks, counted from the top, train with the head.")
        self.last_n_spin.valueChanged.connect(self._last_n_changed)
        self.last_n_button = QPushButton("Unfreeze last N")
        self.last_n_button.setObjectName("unfreezeLastN")
        self.last_n_button.setToolTip("Train the head and the last N blocks of the backbone.")
        self.last_n_button.clicked.connect(lambda: self.unfreeze_last(self.last_n_spin.value()))
        self.all_button = QPushButton("Unfreeze all")
        self.all_button.setObjectName("unfreezeAll")
        self.all_button.setToolTip("Train every weight (full fine-tuning).")
        self.all_button.clicked.connect(self.unfreeze_all)
        actions = QHBoxLayout()
        for w in (self.head_only_button, self.last_n_button, self.last_n_spin, self.all_button):
            actions.addWidget(w)
        actions.addStretch(1)
        self.strategy_label = QLabel()
        self.strategy_label.setObjectName("strategyLabel")
        self.strategy_label.setWordWrap(True)

        self.layer_tree = LayerTree()
        self.layer_tree.trainable_toggled.connect(self.set_trainable)

        self.tree_busy = QWidget()
        self.tree_busy.setObjectName("treeBusy")
        busy_layout = QHBoxLayout(self.tree_busy)
        busy_layout.setContentsMargins(0, 0, 0, 0)
        self.tree_busy_label = QLabel("Loading the model…")
        bar = QProgressBar()
        bar.setRange(0, 0)
        bar.setMaximumWidth(160)
        bar.setMaximumHeight(14)
        busy_layout.addWidget(self.tree_busy_label, 1)
        busy_layout.addWidget(bar)
        self.tree_busy.hide()

        self.error_frame = QFrame()
        self.error_frame.setObjectName("modelErrorFrame")
        self.error_frame.setStyleSheet("#modelErrorFrame { border: 1px solid #c0392b; border-radius: 4px; }")
        self.error_label = QLabel()
        self.error_label.setObjectName("modelError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Try again")
        self.retry_button.setObjectName("retryModel")
        self.retry_button.clicked.connect(self.load_tree)
        error_layout = QHBoxLayout(self.error_frame)
        error_layout.addWidget(self.error_label, 1)
        error_layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignTop)
        self.error_frame.hide()
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("modelWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #b7791f;")
        self.warnings_label.hide()

        layout = QVBoxLayout(box)
        layout.addLayout(actions)
        layout.addWidget(self.strategy_label)
        layout.addWidget(self.tree_busy)
        layout.addWidget(self.error_frame)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.layer_tree, 1)
        return box

    # ------------------------------------------------------------ showing
    def on_first_shown(self) -> None:
        self._activate()

    def on_shown(self) -> None:
        self._activate()

    def _activate(self) -> None:
        """Load the catalog and the tree the first time the page shows; afterwards refresh what is stale."""
        if time.monotonic() - self._catalog_time > CATALOG_REFRESH_S or not self._catalog_rows:
            self.refresh_catalog()
        if self._structure_key() != self._loaded_key:
            self._schedule_tree(now=True)

    def _on_changed(self, section: str) -> None:
        if section in ("", "task"):
            self.catalog_filter.set_task(self.state.config.task.kind.value)
            self._update_catalog_status()
        if section in ("", "task", "model"):
            self._show_current_model()
            self.lora_box.refresh()
            self._update_lora_enabled()
            self._sync_last_n()
            self._refresh_plan()
            self._schedule_tree()

    # ------------------------------------------------------------ catalog
    def refresh_catalog(self) -> None:
        if self._catalog_busy:
            return
        self._catalog_busy = True
        self.bridge.run_task(catalog_job, on_result=self._catalog_loaded, on_error=self._catalog_failed)

    def _catalog_loaded(self, rows: list[dict[str, Any]]) -> None:
        self._catalog_busy = False
        self._catalog_time = time.monotonic()
        self._catalog_rows = rows
        self._selecting = True
        try:
            self.catalog_model.removeRows(0, self.catalog_model.rowCount())
            for row in rows:
                self.catalog_model.appendRow(self._catalog_items(row))
        finally:
            self._selecting = False
        self._update_catalog_status()
        self._select_current_in_catalog()

    def _catalog_items(self, row: dict[str, Any]) -> list[QStandardItem]:
        text_model = row["family"] == "huggingface"
        name = QStandardItem(row["name"])
        name.setData(row["tasks"], CatalogFilter.TASKS_ROLE)
        name.setData(
            " ".join([row["name"], row["family"], row["licence"], row["description"]]).lower(),
            CatalogFilter.SEARCH_ROLE,
        )
        name.setToolTip(row["description"])
        badge_text, colour = BADGES.get(row["badge"], (row["badge"], "#666666"))
        badge = QStandardItem(badge_text)
        badge.setForeground(QColor(colour))
        badge.setToolTip(
            {
                "cached": "The pretrained weights are on this computer.",
                "local": "The model is a folder on this computer.",
                "needs-download": "The weights are not on this computer yet; training downloads them (needs a network).",
            }.get(row["badge"], "")
        )
        params = QStandardItem(f"{row['params_m']:.1f} M")
        params.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        size = QStandardItem(f"{row['input_size']} {'tok' if text_model else 'px'}")
        size.setToolTip(f"{row['input_size']} {'tokens per text' if text_model else 'pixels per side'}")
        size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        licence = QStandardItem(short_licence(row["licence"]))
        licence.setToolTip(row["licence"])
        family = QStandardItem(row["family"])
        return [name, family, params, size, licence, badge]

    def _catalog_failed(self, error_type: str, message: str, details: str) -> None:
        self._catalog_busy = False
        self.catalog_status.setText(f"The catalog could not be read: {message}")
        self.error.emit(error_type, message, details)

    def _update_catalog_status(self) -> None:
        if self._catalog_busy and not self._catalog_rows:
            return
        shown = self.catalog_filter.rowCount()
        self.catalog_status.setText(
            f"{shown} models for this task. Any other torchvision name, Hugging Face id or local folder works too "
            "(open it below)."
            if shown
            else "No catalog model for this task; open a local model below."
        )

    def visible_catalog_names(self) -> list[str]:
        """Names of the catalog rows the search and the task let through, in order."""
        return [self.catalog_filter.index(r, 0).data() for r in range(self.catalog_filter.rowCount())]

    def _select_current_in_catalog(self) -> None:
        name = self.state.config.model.name
        self._selecting = True
        try:
            for r in range(self.catalog_filter.rowCount()):
                if self.catalog_filter.index(r, 0).data() == name:
                    self.catalog.selectRow(r)
                    self.catalog.scrollTo(self.catalog_filter.index(r, 0))
                    return
            self.catalog.clearSelection()
        finally:
            self._selecting = False

    def _catalog_row_changed(self, current, _previous) -> None:
        if self._selecting or not current.isValid():
            return
        name = current.siblingAtColumn(0).data()
        family = current.siblingAtColumn(1).data()
        self.choose_model(name, family)

    def choose_model(self, name: str, source: str) -> None:
        """Make `name` (from `source`: torchvision, huggingface or auto) the model, with its own weights."""
        mc = self.state.config.model
        if mc.name == name and mc.source == source and not mc.weights_path:
            return
        renamed = mc.name != name
        self.state.set_value("model", "name", name)
        self.state.set_value("model", "source", source)
        if mc.weights_path:
            self.state.set_value("model", "weights_path", "")  # a weights file belongs to the old model
        if source == "torchvision" and mc.weights != "DEFAULT":
            self.state.set_value("model", "weights", "DEFAULT")
        if renamed and mc.freeze == "modules":  # module names belong to the old model
            self.state.set_value("model", "frozen_modules", [])
            self.state.set_value("model", "freeze", "head-only")
        if source != "huggingface" and mc.lora.enabled:
            self.state.set_value("model", "lora.enabled", False)

    # ------------------------------------------------------------ local folders and files
    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a Hugging Face model folder")
        if path:
            self.open_local(path)

    def _choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a weights file", "", "State dicts (*.safetensors *.pth *.pt)")
        if path:
            self.open_local(path)

    def open_local(self, path: str | Path) -> bool:
        """A model folder (config.json inside) becomes the model; a .safetensors/.pth file its starting weights."""
        p = expand_user(path)
        if p.is_dir():
            if not (p / "config.json").is_file():
                self._show_error(
                    "ModelLoadError",
                    f"{p} is not a Hugging Face model folder: it has no config.json. "
                    "Choose the folder that save_pretrained wrote, or a .safetensors/.pth weights file.",
                )
                return False
            self.choose_model(str(p.resolve()), "huggingface")
            return True
        if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES:
            self.state.set_value("model", "weights_path", str(p.resolve()))
            return True
        self._show_error("ModelLoadError", f"{p} is neither a model folder nor a .safetensors/.pth weights file.")
        return False

    def _show_current_model(self) -> None:
        mc = self.state.config.model
        source = "" if mc.source == "auto" else f" ({mc.source})"
        self.current_label.setText(f"Current model: <b>{mc.name}</b>{source}")
        self.current_label.setToolTip(mc.name)
        if mc.weights_path:
            self.weights_file_label.setText(f"Weights file: {Path(mc.weights_path).name}")
            self.weights_file_label.setToolTip(mc.weights_path)
        else:
            self.weights_file_label.setText("")
            self.weights_file_label.setToolTip("")
        self.clear_weights_button.setVisible(bool(mc.weights_path))
        if self._catalog_rows:
            self._select_current_in_catalog()

    # ------------------------------------------------------------ layer tree
    def _structure_key(self) -> tuple:
        """Everything the built model's modules depend on (not the freezing, which the plan handles)."""
        c = self.state.config
        m = c.model
        return (
            c.task.kind.value,
            m.name,
            m.source,
            m.pretrained,
            m.weights,
            m.weights_path,
            m.allow_random_init,
            m.trust_remote_code,
            m.head_dropout > 0,
            m.lora.enabled,
            m.lora.r,
            tuple(m.lora.target_modules),
            num_outputs_for(c.task.kind, self.state.scan),
            str(c.base_dir),
        )

    def _schedule_tree(self, now: bool = False) -> None:
        """Rebuild the tree when the model's structure changed; a hidden page waits until it shows again."""
        if not self.shown_once or not self.isVisible() or self._structure_key() == self._loaded_key:
            return
        if now:
            self._tree_timer.stop()
            self.load_tree()
        else:
            self._tree_timer.start()

    def load_tree(self) -> None:
        """Build the model in a worker and show its layers (one build at a time; a newer setup goes next)."""
        if self._tree_busy:
            self._tree_timer.start()  # ask again once the current build has ended
            return
        config = self.state.config.model_copy(deep=True).with_base_dir(self.state.config.base_dir)
        self._tree_busy = True
        self._requested_key = self._structure_key()
        self.tree_busy_label.setText(f"Loading {config.model.name} to list its layers…")
        self.tree_busy.show()
        self.error_frame.hide()
        outputs = num_outputs_for(config.task.kind, self.state.scan)
        self.bridge.run_task(outline_job, config, outputs, on_result=self._tree_loaded, on_error=self._tree_failed)

    def _tree_loaded(self, outline: ModelOutline) -> None:
        self._tree_busy = False
        self._loaded_key = self._requested_key
        self.tree_busy.hide()
        self._outline = outline
        self.layer_tree.set_tree(outline.tree, outline.head, outline.blocks)
        self.warnings_label.setText("\n".join(outline.warnings))
        self.warnings_label.setVisible(bool(outline.warnings))
        self._sync_last_n()
        self._refresh_plan()
        self._schedule_tree()  # the setup changed while this one was building

    def _tree_failed(self, error_type: str, message: str, details: str) -> None:
        self._tree_busy = False
        self._loaded_key = self._requested_key
        self.tree_busy.hide()
        self._outline = None
        self.layer_tree.clear("Trainable: — (the model could not be loaded)")
        self.warnings_label.hide()
        self._show_error(error_type, message, details)
        self._refresh_plan()
        self._schedule_tree()

    def _show_error(self, error_type: str, message: str, details: str = "") -> None:
        self.error_label.setText(message)
        self.error_frame.show()
        self.error.emit(error_type, message, details)

    @property
    def tree_loading(self) -> bool:
        return self._tree_busy or self._tree_timer.isActive()

    # ------------------------------------------------------------ freezing
    def _refresh_plan(self) -> None:
        """Boxes, total and strategy line from the config (instant: no torch work)."""
        self._show_strategy()
        if self._outline is None:
            return
        # imported by the worker that built the outline, so torch is loaded and this is a dictionary lookup
        from finetune_gui.core.models.freezing import planned_trainable

        o = self._outline
        self._plan = planned_trainable(o.tree, self.state.config.model, o.head, o.blocks, lora=o.lora)
        self.layer_tree.set_plan(self._plan)

    def trainable_count(self) -> tuple[int, int]:
        """(trainable, total) parameters as the tree shows them."""
        if self._outline is None:
            return 0, 0
        return self._plan.get("", 0), self._outline.tree.num_params

    def set_trainable(self, name: str, trainable: bool) -> None:
        """A box was ticked or unticked: switch to the module-list strategy that gives exactly that."""
        if self._outline is None:
            return
        from finetune_gui.core.models.freezing import frozen_modules_for, own_params

        o, plan = self._outline, self._plan
        nodes = {n.name: n for n in o.tree.walk()}
        frozen = {
            n
            for n, node in nodes.items()
            if own_params(node) > 0 and plan.get(n, 0) - sum(plan.get(c.name, 0) for c in node.children) == 0
        }
        subtree = {m.name for m in nodes[name].walk()}
        frozen = frozen - subtree if trainable else frozen | subtree
        listed = frozen_modules_for(o.tree, frozen, lora=o.lora)
        self.state.set_value("model", "frozen_modules", listed)
        self.state.set_value("model", "freeze", "modules")
        self._refresh_plan()  # also when the config did not change (the click is undone on screen)

    def freeze_head_only(self) -> None:
        self.state.set_value("model", "freeze", "head-only")

    def unfreeze_last(self, n: int) -> None:
        self.state.set_value("model", "unfreeze_last_n", int(n))
        self.state.set_value("model", "freeze", "last-n")

    def unfreeze_all(self) -> None:
        self.state.set_value("model", "freeze", "none")

    def _last_n_changed(self, n: int) -> None:
        if not self._selecting and self.state.config.model.freeze == "last-n":
            self.state.set_value("model", "unfreeze_last_n", int(n))

    def _sync_last_n(self) -> None:
        blocks = len(self._outline.blocks) if self._outline is not None else 0
        self._selecting = True
        try:
            self.last_n_spin.setMaximum(max(blocks, 1) if blocks else 1000)
            self.last_n_spin.setSuffix(f" of {blocks}" if blocks else "")
            self.last_n_spin.setValue(self.state.config.model.unfreeze_last_n)
        finally:
            self._selecting = False

    def _update_lora_enabled(self) -> None:
        hf = is_huggingface(self.state.config)
        form = self.weights_form.layout()
        form.setRowVisible(self.weights_form.editors["weights"], not hf)  # torchvision weight names only
        form.setRowVisible(self.weights_form.editors["trust_remote_code"], hf)
        self.lora_box.setEnabled(hf)
        self.lora_box.setToolTip(
            LoraConfig.model_fields["enabled"].description
            if hf
            else "LoRA is for Hugging Face text models; image models use the freezing strategies."
        )
        lora = hf and self.state.config.model.lora.enabled
        for button in (self.head_only_button, self.last_n_button, self.all_button, self.last_n_spin):
            button.setEnabled(not lora)

    def _show_strategy(self) -> None:
        mc = self.state.config.model
        warn = ""
        if mc.lora.enabled and is_huggingface(self.state.config):
            text = "LoRA: the adapters and the head train, the model's own weights stay fixed"
            text += (
                f"; {len(mc.frozen_modules)} module(s) frozen as well."
                if mc.freeze == "modules" and mc.frozen_modules
                else "."
            )
        elif mc.freeze == "last-n":
            n = mc.unfreeze_last_n
            text = f"The head and the last {n} block{'s' if n != 1 else ''} train." if n else "Only the head trains."
        elif mc.freeze == "modules":
            text = f"Custom: {len(mc.frozen_modules)} module(s) frozen, the rest trains."
            if self._outline is not None:
                known = {n.name for n in self._outline.tree.walk()}
                unknown = [n for n in mc.frozen_modules if n not in known]
                if unknown:
                    warn = f" Not in this model: {', '.join(unknown)} — training will refuse these names."
        else:
            text = STRATEGY_TEXT[mc.freeze]
        if mc.gradual_unfreeze_every and not mc.lora.enabled:
            text += f" One more block unfreezes every {mc.gradual_unfreeze_every} epoch(s)."
        self.strategy_label.setText(text + warn)
        self.strategy_label.setStyleSheet("color: #c0392b;" if warn else "")
        self.strategy_label.setToolTip("\n".join(mc.frozen_modules) if mc.freeze == "modules" else "")
