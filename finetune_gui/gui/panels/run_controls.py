"""The Train page's control bar: Start training, Quick baseline, Pause, Stop and Resume run, the run's folder, and
why Start is off while the model cannot be had. Which buttons are on is decided here (`RunControls.show_state`); what
they do is the page's business."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from finetune_gui.config import RunConfig, TaskKind

BASELINE_TIP = (
    "A linear probe on the frozen model's features, computed once: validation and test metrics in seconds, "
    "next to always answering the most common class. Saved as a run of its own, to compare with."
)


def baseline_unfit_reason(config: RunConfig) -> str:
    """Why the quick baseline cannot run for `config`, in words for the button's tooltip ("" when it can)."""
    if config.task.kind == TaskKind.CAUSAL_LM:
        return (
            "Quick baseline is off for a causal language model: it fits a linear probe on class labels or "
            "targets, and a language model has none. Start training instead."
        )
    return ""


def baseline_tooltip(config: RunConfig) -> str:
    """The Quick baseline button's tooltip: what it does, or why it is off."""
    return baseline_unfit_reason(config) or BASELINE_TIP


PAUSE_TIP = "Pause after the current step; the run waits until you press Continue"


def push_button(text: str, name: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    return button


class RunControls(QWidget):
    """The row of run buttons with the run folder beside them, and below it the line that says why Start is off
    (with a way to the Model page)."""

    go_to_model = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.start_button = push_button(
            "Start training", "monitor-start", "Train the model set up on the previous pages (Ctrl+R)"
        )
        self.baseline_button = push_button("Quick baseline", "monitor-baseline", BASELINE_TIP)
        self.pause_button = push_button("Pause", "monitor-pause", PAUSE_TIP)
        self.stop_button = push_button(
            "Stop", "monitor-stop", "Stop after the current step and save a checkpoint; the run can be resumed later"
        )
        self.resume_run_button = push_button(
            "Resume run", "monitor-resume-run", "Continue the stopped run shown here from its newest checkpoint"
        )
        self.run_label = QLabel("No run yet")
        self.run_label.setObjectName("monitor-run")
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.run_label.setStyleSheet("color: palette(dark);")
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        for b in (self.start_button, self.baseline_button, self.pause_button, self.stop_button, self.resume_run_button):
            top.addWidget(b)
        top.addSpacing(12)
        top.addWidget(self.run_label, 1)

        self.blocked = QWidget()  # why Start is off while the model cannot be had, and where to fix it
        self.blocked.setObjectName("monitor-start-blocked")
        self.blocked_label = QLabel()
        self.blocked_label.setWordWrap(True)
        self.blocked_label.setStyleSheet("color: #c0392b;")
        to_model = QPushButton("Go to the Model page")
        to_model.clicked.connect(self.go_to_model.emit)
        blocked_row = QHBoxLayout(self.blocked)
        blocked_row.setContentsMargins(0, 0, 0, 0)
        blocked_row.addWidget(self.blocked_label, 1)
        blocked_row.addWidget(to_model, 0, Qt.AlignmentFlag.AlignTop)
        self.blocked.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.blocked)

    def show_state(
        self,
        config: RunConfig,
        *,
        training: bool,
        model_reason: str | None,
        resumable: bool,
        pause_unavailable: str = "",
    ) -> None:
        """Turn the buttons on and off: `model_reason` says why the model cannot be had (None when it can);
        `resumable` whether the run shown can be resumed; `pause_unavailable` why this run cannot pause."""
        no_model = model_reason is not None
        baseline_off = baseline_unfit_reason(config)
        self.start_button.setEnabled(not training and not no_model)
        self.baseline_button.setEnabled(not training and not no_model and not baseline_off)
        self.baseline_button.setToolTip(baseline_tooltip(config))
        self.blocked.setVisible(no_model and not training)
        if no_model:
            self.blocked_label.setText(
                f"Start training is off until the model can be loaded: {model_reason} "
                "Pick a model that is on this computer, or open a local model folder, on the Model page."
            )
        self.pause_button.setEnabled(training and not pause_unavailable)
        self.pause_button.setToolTip(pause_unavailable or PAUSE_TIP)
        self.stop_button.setEnabled(training)
        self.resume_run_button.setEnabled(not training and resumable)
