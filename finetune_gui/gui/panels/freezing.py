"""The model page's freezing panel: quick actions (head only, last N blocks, everything), a line that says what
trains, and the layer tree with a freeze checkbox per module and the running total of trainable parameters.

Which modules train is worked out from the config by core.models.freezing.planned_trainable, so the boxes and
the total follow every change at once. The tree itself (a ModelOutline) is built by the page in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.widgets.layer_tree import LayerTree
from finetune_gui.gui.wording import reword

STRATEGY_TEXT = {
    "none": "Everything trains.",
    "head-only": "Only the head trains; the backbone stays as pretrained.",
}


@dataclass
class ModelOutline:
    """What the page needs to know about a built model; plain data, no torch objects."""

    tree: Any  # core.models.freezing.ModuleNode
    head: list[str]
    blocks: list[str]
    lora: bool
    description: str
    warnings: list[str] = field(default_factory=list)
    random_init: bool = False  # the backbone starts from random weights


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
        random_init=bundle.random_init,
    )
    del bundle
    gc.collect()
    return outline


def is_huggingface(config) -> bool:
    """Whether config.model is a Hugging Face model (LoRA applies) — same rule as core.models.resolve_source."""
    from finetune_gui.core.models import resolve_source  # light: no torch at import

    try:
        return resolve_source(config) == "huggingface"
    except Exception:  # noqa: BLE001 - a mismatched source is shown by the tree's load error
        return False


class FreezingPanel(QGroupBox):
    """The "Layers and freezing" box. Its actions and checkboxes edit config.model through `state`;
    `retry` asks the page to build the model again after a load error; `open_local` to open a model folder
    instead (offered when the model is not on this computer)."""

    retry = Signal()
    open_local = Signal()

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__("Layers and freezing", parent)
        self.state = state
        self.outline: ModelOutline | None = None
        self._plan: dict[str, int] = {}
        self._syncing = False
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
        self.retry_button.clicked.connect(self.retry)
        self.open_local_button = QPushButton("Open a local folder…")
        self.open_local_button.setObjectName("errorOpenLocal")
        self.open_local_button.setToolTip("Use a model folder that is on this computer (written by save_pretrained)")
        self.open_local_button.clicked.connect(self.open_local)
        error_buttons = QVBoxLayout()
        error_buttons.addWidget(self.open_local_button)
        error_buttons.addWidget(self.retry_button)
        error_buttons.addStretch(1)
        error_layout = QHBoxLayout(self.error_frame)
        error_layout.addWidget(self.error_label, 1)
        error_layout.addLayout(error_buttons)
        self.error_frame.hide()
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("modelWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #b7791f;")
        self.warnings_label.hide()

        layout = QVBoxLayout(self)
        layout.addLayout(actions)
        layout.addWidget(self.strategy_label)
        layout.addWidget(self.tree_busy)
        layout.addWidget(self.error_frame)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.layer_tree, 1)

    # ------------------------------------------------------------ the tree
    def show_loading(self, model_name: str) -> None:
        self.tree_busy_label.setText(f"Loading {model_name} to list its layers…")
        self.tree_busy.show()
        self.error_frame.hide()

    def set_outline(self, outline: ModelOutline | None) -> None:
        """The built model's tree; None when it could not be built."""
        self.tree_busy.hide()
        self.outline = outline
        if outline is None:
            self.layer_tree.clear("Trainable: — (the model could not be loaded)")
            self.warnings_label.hide()
        else:
            self.layer_tree.set_tree(outline.tree, outline.head, outline.blocks)
            self.warnings_label.setText("\n".join(outline.warnings))
            self.warnings_label.setVisible(bool(outline.warnings))
            self.sync_last_n()
        self.refresh_plan()

    def show_error(self, message: str, offer_local: bool = False) -> None:
        """The model cannot be used: why, with Try again, and with Open a local folder when `offer_local`."""
        self.error_label.setText(reword(message, self))
        self.open_local_button.setVisible(offer_local)
        self.error_frame.show()

    # ------------------------------------------------------------ freezing
    def refresh_plan(self) -> None:
        """Boxes, total and strategy line from the config (instant: no torch work)."""
        self._show_strategy()
        if self.outline is None:
            return
        # imported by the worker that built the outline, so torch is loaded and this is a dictionary lookup
        from finetune_gui.core.models.freezing import planned_trainable

        o = self.outline
        self._plan = planned_trainable(o.tree, self.state.config.model, o.head, o.blocks, lora=o.lora)
        self.layer_tree.set_plan(self._plan)

    def trainable_count(self) -> tuple[int, int]:
        """(trainable, total) parameters as the tree shows them."""
        if self.outline is None:
            return 0, 0
        return self._plan.get("", 0), self.outline.tree.num_params

    def set_trainable(self, name: str, trainable: bool) -> None:
        """A box was ticked or unticked: switch to the module-list strategy that gives exactly that."""
        if self.outline is None:
            return
        from finetune_gui.core.models.freezing import frozen_modules_for, own_params

        o, plan = self.outline, self._plan
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
        self.refresh_plan()  # also when the config did not change (the click is undone on screen)

    def freeze_head_only(self) -> None:
        self.state.set_value("model", "freeze", "head-only")

    def unfreeze_last(self, n: int) -> None:
        self.state.set_value("model", "unfreeze_last_n", int(n))
        self.state.set_value("model", "freeze", "last-n")

    def unfreeze_all(self) -> None:
        self.state.set_value("model", "freeze", "none")

    def _last_n_changed(self, n: int) -> None:
        if not self._syncing and self.state.config.model.freeze == "last-n":
            self.state.set_value("model", "unfreeze_last_n", int(n))

    def sync_last_n(self) -> None:
        blocks = len(self.outline.blocks) if self.outline is not None else 0
        self._syncing = True
        try:
            self.last_n_spin.setMaximum(max(blocks, 1) if blocks else 1000)
            self.last_n_spin.setSuffix(f" of {blocks}" if blocks else "")
            self.last_n_spin.setValue(self.state.config.model.unfreeze_last_n)
        finally:
            self._syncing = False

    def set_lora(self, lora: bool) -> None:
        """With LoRA on, the adapters decide what trains: the quick actions step aside."""
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
            if self.outline is not None:
                known = {n.name for n in self.outline.tree.walk()}
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
