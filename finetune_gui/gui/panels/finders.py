"""The setup page's two finders, each a short throwaway training run in a worker on a copy of the config:
the LR finder (a sweep of rising learning rates, with a suggestion) and the batch-size finder (the largest
batch that fits the device's memory). Nothing in the config changes until the user takes the result.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

LR_FINDER_STEPS = 100
SWEEP_REDRAW_MS = 100  # the sweep's bar, line and curve are redrawn at most this often


def lr_finder_job(config, num_steps: int, control, progress=None):
    from finetune_gui.core.training.lr_find import find_lr

    return find_lr(config, num_steps=num_steps, control=control, progress=progress)


def batch_size_job(config, max_batch_size: int, control):
    from finetune_gui.core.training.batch_size import find_batch_size

    return find_batch_size(config, max_batch_size=max_batch_size, control=control)


def rounded_lr(lr: float) -> float:
    """An LR with three significant digits, as a person would type it."""
    return float(f"{lr:.3g}")


def short_lr(lr: float) -> str:
    """3.2e-4 rather than 0.00032 or 3.2e-04: a sweep's LRs span many decades."""
    mantissa, exponent = f"{lr:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


class _Finder:
    """What both finders share: a config copy to work on, setting the result, and saying a failure."""

    error: Signal

    def _config_copy(self):
        return self.state.config.model_copy(deep=True).with_base_dir(self.state.config.base_dir)

    def _set_train(self, key: str, value: Any) -> bool:
        """Set train.`key`; a refused value raises the error dialog. True when it was set."""
        message = self.state.set_value("train", key, value)
        if message:
            self.error.emit("ConfigError", message, "")
        return not message

    def _show_failure(self, status: QLabel, what: str, error_type: str, message: str, details: str) -> None:
        """The worker failed: say so in red on the status line and raise the error dialog."""
        status.setText(f"{what} failed: {message}")
        status.setStyleSheet("color: #c0392b;")
        self.error.emit(error_type, message, details)


class LRFinderPanel(QGroupBox, _Finder):
    """The "LR finder" box: steps, Find, Stop, the loss-against-LR plot (made by `ensure_plot`) and
    "Use suggested LR"."""

    error = Signal(str, str, str)  # error type, message, details

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__("LR finder", parent)
        self.state, self.bridge = state, bridge
        self.finder_plot = None  # widgets.lr_curve.LRFinderPlot, made on first show (it imports pyqtgraph)
        self._control = None
        self._started = 0.0
        self._suggested: float | None = None
        self._swept = None  # the config the last sweep ran on
        self._sweep: list[tuple[float, float, float]] = []  # (lr, smoothed loss, raw loss) so far
        self._latest = None  # the newest SweepProgress, drawn on the next redraw tick
        self._redraw_timer = QTimer(self)
        self._redraw_timer.setSingleShot(True)
        self._redraw_timer.setInterval(SWEEP_REDRAW_MS)
        self._redraw_timer.timeout.connect(self._draw_progress)
        self._layout = QVBoxLayout(self)
        self.find_button = QPushButton("Find learning rate")
        self.find_button.setObjectName("findLR")
        self.find_button.setToolTip(
            "Train a throwaway copy of the model for a short sweep of rising learning rates "
            "on your data, and suggest the LR where the loss falls fastest."
        )
        self.find_button.clicked.connect(self.start)
        self.finder_steps_spin = QSpinBox()
        self.finder_steps_spin.setObjectName("lrFinderSteps")
        self.finder_steps_spin.setRange(10, 1000)
        self.finder_steps_spin.setValue(LR_FINDER_STEPS)
        self.finder_steps_spin.setSuffix(" steps")
        self.finder_steps_spin.setToolTip("Training steps in the sweep (more is smoother, and slower).")
        self.stop_finder_button = QPushButton("Stop")
        self.stop_finder_button.setObjectName("stopLRFinder")
        self.stop_finder_button.setToolTip("End the sweep after the current step; the curve so far stays.")
        self.stop_finder_button.clicked.connect(self.stop)
        self.stop_finder_button.hide()
        self.finder_busy = QProgressBar()  # indeterminate while the model is built, then steps done of the sweep
        self.finder_busy.setObjectName("lrFinderBusy")
        self.finder_busy.setRange(0, 0)
        self.finder_busy.setFormat("%v/%m")
        self.finder_busy.setMaximumHeight(14)
        self.finder_busy.hide()
        self.finder_steps_spin.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.find_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        finder_row = QHBoxLayout()
        finder_row.addWidget(self.find_button)
        finder_row.addWidget(self.finder_steps_spin)
        finder_row.addWidget(self.stop_finder_button)
        finder_row.addWidget(self.finder_busy, 4)
        finder_row.addStretch(1)
        self._layout.addLayout(finder_row)
        self.finder_status = QLabel()
        self.finder_status.setObjectName("lrFinderStatus")
        self.finder_status.setWordWrap(True)
        self.finder_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.use_suggested_button = QPushButton("Use suggested LR")
        self.use_suggested_button.setObjectName("useSuggestedLR")
        self.use_suggested_button.setEnabled(False)
        self.use_suggested_button.clicked.connect(self.use_suggested_lr)
        suggestion_row = QHBoxLayout()
        suggestion_row.addWidget(self.finder_status, 1)
        suggestion_row.addWidget(self.use_suggested_button, 0, Qt.AlignmentFlag.AlignTop)
        self._layout.addLayout(suggestion_row)

    def ensure_plot(self) -> None:
        if self.finder_plot is None:
            from finetune_gui.gui.widgets.lr_curve import LRFinderPlot

            self.finder_plot = LRFinderPlot()
            self._layout.insertWidget(1, self.finder_plot, 1)

    @property
    def running(self) -> bool:
        return self._control is not None

    def start(self) -> None:
        """Run find_lr on a copy of the config in a worker; the plot and the suggestion come back."""
        if self._control is not None:
            return
        from finetune_gui.core.training.events import RunControl  # light: no torch

        self.ensure_plot()
        config = self._config_copy()
        self._control = RunControl()
        self._started = time.monotonic()
        self._sweep, self._latest = [], None
        self.find_button.setEnabled(False)
        self.finder_steps_spin.setEnabled(False)
        self.stop_finder_button.show()
        self.stop_finder_button.setEnabled(True)
        self.finder_busy.setRange(0, 0)
        self.finder_busy.show()
        self.use_suggested_button.setEnabled(False)
        self.finder_status.setStyleSheet("")
        self.finder_status.setText(f"Building the model ({config.model.name}) and the data for the sweep…")
        self.finder_plot.show_hint("The loss against the learning rate is drawn here as the sweep goes.")
        self._swept = config
        self.bridge.run_task(
            lr_finder_job,
            config,
            self.finder_steps_spin.value(),
            self._control,
            on_result=self._done,
            on_error=self._failed,
            on_progress=self._progressed,
        )

    def stop(self) -> None:
        if self._control is not None:
            self._control.stop()
            self.stop_finder_button.setEnabled(False)
            self.finder_status.setText("Stopping the sweep after the current step…")

    def _progressed(self, progress: Any) -> None:
        """A SweepProgress from the worker: keep its point; the display follows on the next redraw tick."""
        if self._control is None:
            return  # a late one, after the result
        if progress.phase == "sweeping":
            self._sweep.append((progress.lr, progress.smoothed, progress.loss))
        self._latest = progress
        if not self._redraw_timer.isActive():
            self._redraw_timer.start()

    def _draw_progress(self) -> None:
        p = self._latest
        if p is None or self._control is None:
            return
        if p.phase != "sweeping":
            self.finder_status.setText("Building the model and the data for the sweep…")
            return
        self.finder_busy.setRange(0, p.num_steps)
        self.finder_busy.setValue(p.step)
        where = f"step {p.step}/{p.num_steps}, lr {short_lr(p.lr)}, loss {p.smoothed:.3g}"
        stopping = self._control.stop_requested
        self.finder_status.setText(f"Stopping after {where}…" if stopping else f"Sweeping: {where}")
        lrs, losses, raw = zip(*self._sweep)
        self.finder_plot.set_result(lrs, losses, raw)

    @property
    def sweep_points(self) -> int:
        """Points of the running sweep received so far."""
        return len(self._sweep)

    def _ended(self) -> None:
        self._redraw_timer.stop()
        self._latest = None
        self._control = None
        self.find_button.setEnabled(True)
        self.finder_steps_spin.setEnabled(True)
        self.stop_finder_button.hide()
        self.finder_busy.hide()

    def _done(self, result: Any) -> None:
        seconds = time.monotonic() - self._started
        self._ended()
        self.finder_plot.set_result(result.lrs, result.losses, result.raw_losses, result.suggested_lr)
        self._suggested = result.suggested_lr
        self.state.remember_lr_suggestion(self._swept, result.suggested_lr)
        if result.suggested_lr is not None:
            value = rounded_lr(result.suggested_lr)
            self.use_suggested_button.setText(f"Use suggested LR ({value:g})")
            self.use_suggested_button.setEnabled(True)
            text = f"Suggested learning rate: <b>{value:g}</b> — {result.reason}."
        else:
            self.use_suggested_button.setText("Use suggested LR")
            text = f"No suggestion: {result.reason}."
        self.finder_status.setText(f"{text} ({len(result.lrs)} steps in {seconds:.0f} s)")

    def _failed(self, error_type: str, message: str, details: str) -> None:
        self._ended()
        self._show_failure(self.finder_status, "The LR finder", error_type, message, details)

    def use_suggested_lr(self) -> None:
        if self._suggested is not None:
            self._set_train("lr", rounded_lr(self._suggested))


class BatchSizeFinder(QWidget, _Finder):
    """A row under the length form: Find largest batch size, up to N, Stop, Use it; and what was found."""

    error = Signal(str, str, str)  # error type, message, details

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.bridge = state, bridge
        self._control = None
        self._found: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        self.find_batch_button = QPushButton("Find largest batch size")
        self.find_batch_button.setObjectName("findBatchSize")
        self.find_batch_button.setToolTip(
            "Run real training steps with growing batches on the chosen device and report the largest batch that "
            "fits in its memory (the model is a throwaway copy). Bigger batches train faster per sample."
        )
        self.find_batch_button.clicked.connect(self.start)
        self.batch_limit_spin = QSpinBox()
        self.batch_limit_spin.setObjectName("batchSizeLimit")
        self.batch_limit_spin.setRange(1, 4096)
        self.batch_limit_spin.setValue(512)
        self.batch_limit_spin.setPrefix("up to ")
        self.batch_limit_spin.setToolTip(
            "The largest batch size to try (on a CPU, memory is rarely the limit: keep this near what you would use)."
        )
        self.stop_batch_button = QPushButton("Stop")
        self.stop_batch_button.setObjectName("stopBatchSize")
        self.stop_batch_button.setToolTip("End the search after the batch size being tried now.")
        self.stop_batch_button.clicked.connect(self.stop)
        self.stop_batch_button.hide()
        self.use_batch_button = QPushButton("Use it")
        self.use_batch_button.setObjectName("useBatchSize")
        self.use_batch_button.setEnabled(False)
        self.use_batch_button.clicked.connect(self.use_found_batch_size)
        row.addWidget(self.find_batch_button)
        row.addWidget(self.batch_limit_spin)
        row.addWidget(self.stop_batch_button)
        row.addWidget(self.use_batch_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.batch_status = QLabel()
        self.batch_status.setObjectName("batchSizeStatus")
        self.batch_status.setWordWrap(True)
        self.batch_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.batch_status)

    @property
    def running(self) -> bool:
        return self._control is not None

    def start(self) -> None:
        """Run find_batch_size on a copy of the config in a worker; the largest size that fits comes back."""
        if self._control is not None:
            return
        from finetune_gui.core.training.events import RunControl  # light: no torch

        config = self._config_copy()
        self._control = RunControl()
        self._found = None
        self.find_batch_button.setEnabled(False)
        self.stop_batch_button.setEnabled(True)
        self.stop_batch_button.show()
        self.use_batch_button.setEnabled(False)
        self.use_batch_button.setText("Use it")
        self.batch_status.setStyleSheet("")
        self.batch_status.setText(
            f"Trying training steps from batch size {config.train.batch_size} on "
            f"{config.train.device} (building the model and the data first)…"
        )
        self.bridge.run_task(
            batch_size_job,
            config,
            self.batch_limit_spin.value(),
            self._control,
            on_result=self._found_it,
            on_error=self._failed,
        )

    def stop(self) -> None:
        """End the search after the size being tried now (its result then reads "stopped")."""
        if self._control is not None:
            self._control.stop()
            self.stop_batch_button.setEnabled(False)

    def _ended(self) -> None:
        self._control = None
        self.find_batch_button.setEnabled(True)
        self.stop_batch_button.hide()

    def _found_it(self, result: Any) -> None:
        self._ended()
        self._found = result.batch_size
        tried = ", ".join(f"{size} {'fits' if ok else 'out of memory'}" for size, ok in result.tried)
        self.batch_status.setText(
            f"Largest batch size that fits: <b>{result.batch_size}</b> — {result.reason} (tried {tried})."
        )
        self.use_batch_button.setText(f"Use {result.batch_size}")
        self.use_batch_button.setEnabled(result.batch_size != self.state.config.train.batch_size)

    def _failed(self, error_type: str, message: str, details: str) -> None:
        stopped = self._control is not None and self._control.stop_requested
        self._ended()
        if stopped:  # by the Stop button, or the window is closing
            self.batch_status.setText("The batch-size search was stopped.")
            return
        self._show_failure(self.batch_status, "The batch-size search", error_type, message, details)

    def use_found_batch_size(self) -> None:
        if self._found is not None and self._set_train("batch_size", self._found):
            self.use_batch_button.setEnabled(False)
