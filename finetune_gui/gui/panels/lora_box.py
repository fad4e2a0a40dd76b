"""The model page's LoRA box: low-rank adapters for Hugging Face models (enabled, rank, alpha, dropout, targets)."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QSpinBox, QWidget

from finetune_gui.config import LoraConfig


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
