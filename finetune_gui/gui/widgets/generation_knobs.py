"""The temperature and max-tokens boxes of a text-generation panel (Evaluate and Try it show the same two)."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QSpinBox


def temperature_box(object_name: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setObjectName(object_name)
    box.setRange(0.0, 2.0)
    box.setSingleStep(0.1)
    box.setValue(0.8)
    box.setToolTip("0 always picks the likeliest next token; higher values write more freely")
    return box


def max_tokens_box(object_name: str) -> QSpinBox:
    box = QSpinBox()
    box.setObjectName(object_name)
    box.setRange(1, 2048)
    box.setValue(60)
    box.setToolTip("How many tokens (word pieces) to write at most")
    return box
