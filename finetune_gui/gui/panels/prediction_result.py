"""What the model predicted for one input: the label (or value) in large type, a note, and probability bars."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from finetune_gui.gui.widgets.score_bars import ScoreBars


class PredictionResult(QWidget):
    """Shows a core.inference.Prediction the way its task reads best."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setObjectName("tryit-label")
        self.label.setStyleSheet("font-size: 20pt; font-weight: 600;")
        self.label.setWordWrap(True)
        self.note = QLabel("")
        self.note.setObjectName("tryit-note")
        self.note.setStyleSheet("color: palette(dark);")
        self.note.setWordWrap(True)
        self.bars = ScoreBars()
        v = QVBoxLayout(self)
        v.setContentsMargins(12, 0, 0, 0)
        v.addWidget(QLabel("Prediction"))
        v.addWidget(self.label)
        v.addWidget(self.note)
        v.addSpacing(8)
        v.addWidget(self.bars)
        v.addStretch(1)

    def show_prediction(self, prediction, task: str) -> None:
        if prediction.value is not None:
            self.label.setText(prediction.label)
            self.note.setText("predicted value")
            self.bars.set_scores({})
        elif task == "image-multilabel":
            self.label.setText(prediction.label or "no label")
            self.note.setText("labels at 50% or more (the line marks 50%)")
            self.bars.set_scores(prediction.scores, threshold=0.5)
        else:
            best = prediction.scores.get(prediction.label, 0.0)
            self.label.setText(prediction.label)
            self.note.setText(f"{best:.1%} sure; every class's probability:")
            self.bars.set_scores(prediction.scores)

    def show_problem(self, message: str) -> None:
        """No prediction: why, in place of one."""
        self.label.setText("No prediction")
        self.note.setText(message)
        self.bars.set_scores({})

    def clear(self) -> None:
        self.label.setText("")
        self.note.setText("")
        self.bars.set_scores({})
