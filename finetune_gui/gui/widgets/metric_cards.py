"""A row of metric cards: a big number over a small title, one card per metric of a run's evaluation."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QVBoxLayout, QWidget

#: Overall metrics in the order they are shown; others follow.
METRIC_ORDER = (
    "accuracy",
    "top5_accuracy",
    "f1_macro",
    "precision_macro",
    "recall_macro",
    "f1_micro",
    "hamming_accuracy",
    "mae",
    "rmse",
    "r2",
    "perplexity",
    "loss",
)


def metric_title(name: str) -> str:
    return {
        "f1_macro": "F1 (macro)",
        "f1_micro": "F1 (micro)",
        "precision_macro": "precision (macro)",
        "recall_macro": "recall (macro)",
        "top5_accuracy": "top-5 accuracy",
        "hamming_accuracy": "label accuracy",
        "mae": "MAE",
        "rmse": "RMSE",
        "r2": "R²",
    }.get(name, name.replace("_", " "))


class MetricCards(QWidget):
    """The overall metrics of an evaluation.json, with the sample count and split; hidden when there are none.
    Each card is a QFrame named "metric-<title>" whose big number is the QLabel named "value"."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.row = QHBoxLayout(self)
        self.row.setSpacing(8)
        self.row.setContentsMargins(0, 0, 0, 0)

    def set_metrics(self, ev: dict[str, Any]) -> None:
        while self.row.count():
            item = self.row.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        names = [k for k in METRIC_ORDER if isinstance(ev.get(k), (int, float))]
        for name in names:
            self.row.addWidget(_card(metric_title(name), f"{ev[name]:.4g}"))
        if names:
            self.row.addWidget(_card("samples", f"{ev.get('num_samples', 0):,}"))
            self.row.addWidget(_card("split", str(ev.get("split", "test"))))
        self.row.addStretch(1)
        self.setVisible(bool(names))


def _card(title: str, value: str) -> QFrame:
    card = QFrame()
    card.setObjectName(f"metric-{title}")
    card.setFrameShape(QFrame.Shape.StyledPanel)
    card.setStyleSheet("QFrame { border: 1px solid palette(mid); border-radius: 6px; }QLabel { border: none; }")
    v = QVBoxLayout(card)
    v.setContentsMargins(10, 4, 10, 4)
    v.setSpacing(0)
    big = QLabel(value)
    big.setObjectName("value")
    big.setStyleSheet("font-size: 16pt; font-weight: 600;")
    small = QLabel(title)
    small.setStyleSheet("color: palette(dark);")
    v.addWidget(big)
    v.addWidget(small)
    return card
