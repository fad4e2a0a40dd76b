"""A form built from the config model: one editor per field, tooltips from the field descriptions."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal

from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from finetune_gui.config import RunConfig


def _bounds(field) -> tuple[float | None, float | None, bool]:
    lo = hi = None
    strict_lo = False
    for m in field.metadata:
        if getattr(m, "ge", None) is not None:
            lo = m.ge
        if getattr(m, "gt", None) is not None:
            lo, strict_lo = m.gt, True
        if getattr(m, "le", None) is not None:
            hi = m.le
        if getattr(m, "lt", None) is not None:
            hi = m.lt
    return lo, hi, strict_lo


class CompactDoubleSpinBox(QDoubleSpinBox):
    """Shows 0.15 and 5e-05 instead of 0.150000 and 0.000050; typing either form works."""

    def textFromValue(self, value: float) -> str:
        return format(value, ".6g")

    def valueFromText(self, text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def sizeHint(self):
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), self.fontMetrics().horizontalAdvance("0" * 9) + 28))
        return hint

    def minimumSizeHint(self):
        return self.sizeHint()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        stripped = text.strip()
        if stripped == self.specialValueText():
            return QValidator.State.Acceptable, text, pos
        try:
            value = float(stripped)
        except ValueError:
            ok = all(c in "0123456789.eE+-" for c in stripped)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        inside = self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if inside else QValidator.State.Intermediate), text, pos


LABELS = {
    "tensorboard": "TensorBoard logs",
    "l1": "L1",
    "compile": "Compile the model",
    "lp_epochs": "Probe epochs",  # lp-ft: epochs training the head alone
    "ft_lr_mult": "Fine-tune LR ×",
    "feature_cache_aug_copies": "Augmented copies",  # of each training image, for the feature cache
    "strategy": "Several GPUs",  # under torchrun: ddp copies the model, fsdp shards it
    "sync_batchnorm": "Sync BatchNorm",
}
#: What an empty (None) whole-number field means, where it is not "off".
EMPTY_MEANS = {"num_workers": "auto", "decode_memory_mb": "auto"}


def switch_choices(annotation: Any) -> list[tuple[str, Any]]:
    """The (text, value) choices of a field that is a bool or one of some words (train.compile: true, false or
    "auto"): off, on, then the words; [] for any other field."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType) or bool not in args:
        return []
    words = [w for a in args if typing.get_origin(a) is Literal for w in typing.get_args(a)]
    return [("off", False), ("on", True)] + [(str(w), w) for w in words]


def _pretty(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").capitalize()


class ConfigForm(QWidget):
    """Editors for the fields of one config section. Edits go to AppState; bad values show beside the field."""

    def __init__(self, state, section: str, keys: list[str] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.section = state, section
        model = RunConfig.model_fields[section].annotation
        self._fields = {k: f for k, f in model.model_fields.items() if keys is None or k in keys}
        if keys is not None:
            self._fields = {k: self._fields[k] for k in keys}
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self._loading = False
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        for key, field in self._fields.items():
            editor = self._make_editor(key, field)
            if editor is None:
                continue
            editor.setToolTip(field.description or "")
            editor.setObjectName(f"{section}.{key}")
            error = QLabel()
            error.setStyleSheet("color: #c0392b;")
            error.setWordWrap(True)
            error.hide()
            label = QLabel(_pretty(key))
            label.setToolTip(field.description or "")
            layout.addRow(label, editor)
            layout.addRow("", error)
            self.editors[key], self.errors[key] = editor, error
            if isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                self._say_when_out_of_range(key, editor)
        self.refresh()
        state.changed.connect(self._on_changed)

    # -- building
    def _make_editor(self, key: str, field) -> QWidget | None:
        ann = field.annotation
        choices = switch_choices(ann)
        if choices:  # the value is the item's data: False, True or a word
            box = QComboBox()
            for text, value in choices:
                box.addItem(text, value)
            box.currentIndexChanged.connect(lambda i, k=key, b=box: self._commit(k, b.itemData(i)))
            return box
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        optional = origin in (typing.Union, types.UnionType) and type(None) in args
        if optional:
            ann = next(a for a in args if a is not type(None))
            origin, args = typing.get_origin(ann), typing.get_args(ann)
        if origin is Literal:
            box = QComboBox()
            box.addItems([str(a) for a in args])
            box.currentTextChanged.connect(lambda v, k=key: self._commit(k, v))
            return box
        if isinstance(ann, type) and hasattr(ann, "__members__"):  # enums
            box = QComboBox()
            box.addItems([m.value for m in ann])
            box.currentTextChanged.connect(lambda v, k=key: self._commit(k, v))
            return box
        if ann is bool:
            check = QCheckBox()
            check.toggled.connect(lambda v, k=key: self._commit(k, v))
            return check
        lo, hi, strict = _bounds(field)
        if ann is int:
            spin = QSpinBox()
            spin.setRange(
                int(lo if lo is not None else -(2**31)) + (1 if strict else 0), int(hi if hi is not None else 2**31 - 1)
            )
            if optional:
                spin.setMinimum(spin.minimum() - 1)
                spin.setSpecialValueText(EMPTY_MEANS.get(key, "off"))
            spin.valueChanged.connect(
                lambda v, k=key, o=optional, s=spin: self._commit(k, None if o and v == s.minimum() else v)
            )
            return spin
        if ann is float:
            spin = CompactDoubleSpinBox()
            spin.setDecimals(10 if key in ("lr",) or (hi is not None and hi <= 1) else 4)
            low = float(lo) if lo is not None else -1e9
            if strict:
                low += 10 ** -spin.decimals()
            spin.setRange(low, float(hi) if hi is not None else 1e9)
            step = 0.05 if hi is not None and hi <= 1 else 1.0
            spin.setSingleStep(1e-4 if key == "lr" else step)
            if optional:
                spin.setMinimum(spin.minimum() - step)
                spin.setSpecialValueText("model's own")
            spin.valueChanged.connect(
                lambda v, k=key, o=optional, s=spin: self._commit(k, None if o and v <= s.minimum() else v)
            )
            return spin
        if ann is str:
            line = QLineEdit()
            line.editingFinished.connect(lambda k=key, w=line: self._commit(k, w.text()))
            return line
        if origin is list:
            line = QLineEdit()
            line.setPlaceholderText("comma-separated")
            item_type = args[0] if args else str
            line.editingFinished.connect(lambda k=key, w=line, t=item_type: self._commit_list(k, w.text(), t))
            return line
        return None

    def _say_when_out_of_range(self, key: str, spin: QSpinBox | QDoubleSpinBox) -> None:
        """A typed number outside the field's range is changed by the spin box to the nearest one it allows;
        say so beside the field instead of changing it silently."""
        typed: dict[str, str] = {}
        spin.lineEdit().textEdited.connect(lambda text: typed.__setitem__("text", text))

        def finished() -> None:
            text = typed.pop("text", "").strip()
            try:
                value = float(text)
            except ValueError:
                return
            low = spin.minimum() + (spin.singleStep() if spin.specialValueText() else 0)  # one step below: "off"
            if low <= value <= spin.maximum():
                return
            bound, which = (spin.maximum(), "largest") if value > spin.maximum() else (low, "smallest")
            self.show_error(
                key,
                f"{text} is out of range: the {which} value allowed here is {bound:g}, so it is now {spin.value():g}.",
            )

        spin.editingFinished.connect(finished)

    # -- syncing
    def _commit(self, key: str, value: Any) -> None:
        if self._loading:
            return
        message = self.state.set_value(self.section, key, value)
        self.show_error(key, message)

    def _commit_list(self, key: str, text: str, item_type) -> None:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            values = [item_type(p) for p in parts]
        except ValueError:
            self.show_error(key, f"{self.section}.{key}: expected a comma-separated list of {item_type.__name__}")
            return
        self._commit(key, values)

    def show_error(self, key: str, message: str | None) -> None:
        label = self.errors.get(key)
        if label is None:
            return
        label.setText(message or "")
        label.setVisible(bool(message))

    def _on_changed(self, section: str) -> None:
        if section in ("", self.section):
            self.refresh()

    def refresh(self) -> None:
        """Show the config's current values."""
        self._loading = True
        try:
            for key, editor in self.editors.items():
                value = self.state.get_value(self.section, key)
                if hasattr(value, "value"):
                    value = value.value
                if isinstance(editor, QComboBox) and switch_choices(self._fields[key].annotation):
                    editor.setCurrentIndex(editor.findData(value))
                elif isinstance(editor, QComboBox):
                    editor.setCurrentText(str(value))
                elif isinstance(editor, QCheckBox):
                    editor.setChecked(bool(value))
                elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                    editor.setValue(editor.minimum() if value is None else value)
                elif isinstance(editor, QLineEdit):
                    text = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
                    if editor.text() != text:
                        editor.setText(text)
        finally:
            self._loading = False


def widen_number_editors(form: ConfigForm, chars: int = 9) -> None:
    """Room for values such as 0.0003 or 5e-05 (a spin box sizes itself from its minimum and maximum only)."""
    for editor in form.editors.values():
        if isinstance(editor, QAbstractSpinBox):
            editor.setMinimumWidth(
                max(editor.sizeHint().width(), editor.fontMetrics().horizontalAdvance("0" * chars) + 28)
            )
