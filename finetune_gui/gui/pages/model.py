"""The model page: pick a backbone from the catalog (or a local folder / weights file), see its layers with
freeze checkboxes and a running total of trainable parameters, and set freezing, dropout and LoRA.

A composition of panels: the catalog browser, the freezing panel and the LoRA box. The catalog (it imports
torchvision) and the layer tree (it builds the model) come from worker threads via `bridge.run_task`; only plain
data (catalog rows, a ModuleNode tree) reaches the GUI thread. The page rebuilds the tree when the model's
structure changes, once it has been shown and while it is visible.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from finetune_gui.config import LoraConfig
from finetune_gui.core import plan
from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.catalog_browser import CatalogBrowser
from finetune_gui.gui.panels.freezing import FreezingPanel, ModelOutline, is_huggingface, outline_job
from finetune_gui.gui.panels.lora_box import LoraBox
from finetune_gui.gui.widgets.config_form import ConfigForm, widen_number_editors

TREE_DEBOUNCE_MS = 300


class ModelPage(Page):
    key = "model"
    title = "Model"

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self._loaded_key: tuple | None = None  # structure the tree (or its error) belongs to
        self._requested_key: tuple | None = None
        self._readiness_key: tuple | None = None
        self._tree_busy = False
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

        self.catalog = CatalogBrowser(self.state, self.bridge)
        self.catalog.problem.connect(self._show_error)
        self.catalog.error.connect(self.error)
        self.freezing = FreezingPanel(self.state)
        self.freezing.retry.connect(self.retry)
        self.freezing.open_local.connect(self.catalog.choose_folder)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.catalog)
        splitter.addWidget(self.freezing)
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

    # ------------------------------------------------------------ showing
    def on_first_shown(self) -> None:
        self._activate()

    def on_shown(self) -> None:
        self._activate()

    def _activate(self) -> None:
        """Load the catalog and the tree the first time the page shows; afterwards refresh what is stale."""
        self.catalog.refresh_if_stale()
        if self._structure_key() != self._loaded_key:
            self._schedule_tree(now=True)

    def _on_changed(self, section: str) -> None:
        if section in ("", "task"):
            self.catalog.set_task(self.state.config.task.kind.value)
        if section in ("", "task", "model"):
            self._show_current_model()
            self.lora_box.refresh()
            self._update_lora_enabled()
            self.freezing.sync_last_n()
            self.freezing.refresh_plan()
            self._schedule_tree()

    def _show_current_model(self) -> None:
        mc = self.state.config.model
        source = "" if mc.source == "auto" else f" ({mc.source})"
        self.current_label.setText(f"Current model: <b>{mc.name}</b>{source}")
        self.current_label.setToolTip(mc.name)
        self.catalog.show_model()

    def _update_lora_enabled(self) -> None:
        hf = is_huggingface(self.state.config)
        self.catalog.set_huggingface(hf)
        self.lora_box.setEnabled(hf)
        self.lora_box.setToolTip(
            LoraConfig.model_fields["enabled"].description
            if hf
            else "LoRA is for Hugging Face text models; image models use the freezing strategies."
        )
        self.freezing.set_lora(hf and self.state.config.model.lora.enabled)

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
            plan.planned_outputs(c.task.kind, self.state.scan),
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
        self._readiness_key = self.state.model_key()
        self.freezing.show_loading(config.model.name)
        outputs = plan.planned_outputs(config.task.kind, self.state.scan)
        self.bridge.run_task(outline_job, config, outputs, on_result=self._tree_loaded, on_error=self._tree_failed)

    def retry(self) -> None:
        """Try again: ask the network afresh (a cable may be plugged in now) and build the model again."""
        from finetune_gui.gui.model_readiness import forget_network_answers

        forget_network_answers()
        self.load_tree()

    def _tree_loaded(self, outline: ModelOutline) -> None:
        self._tree_busy = False
        self._loaded_key = self._requested_key
        self.state.set_model_readiness(self._readiness_key, True, built=True)
        said = self.state.fit_freezing_to_weights(outline.random_init)
        if said:
            outline.warnings.append(said)
        self.freezing.set_outline(outline)
        self._schedule_tree()  # the setup changed while this one was building

    def _tree_failed(self, error_type: str, message: str, details: str) -> None:
        self._tree_busy = False
        self._loaded_key = self._requested_key
        self.freezing.set_outline(None)
        if error_type in ("ModelLoadError", "OfflineError"):
            self.state.set_model_readiness(self._readiness_key, False, message, built=True)
        self._show_error(error_type, message, details)
        self._schedule_tree()

    def _show_error(self, error_type: str, message: str, details: str = "") -> None:
        """Said once, beside the layers, with what to do; only a fault of the app also gets the dialog."""
        self.freezing.show_error(message, offer_local=error_type in ("OfflineError", "ModelLoadError"))
        if not is_expected(error_type):
            self.error.emit(error_type, message, details)

    @property
    def tree_loading(self) -> bool:
        return self._tree_busy or self._tree_timer.isActive()

    def trainable_count(self) -> tuple[int, int]:
        """(trainable, total) parameters as the layer tree shows them."""
        return self.freezing.trainable_count()
