"""The Train page: start, pause, stop and resume runs; progress, live curves and the run's log.

Live events come from the worker bridge (steps throttled to ≤ 20 per second). Opening a previous run (the
state's run_changed while it is not the live run) re-plots its curves from metrics.jsonl (epochs) and steps.jsonl
(steps), read in a worker thread; resuming it then keeps the steps up to its checkpoint. The plots (pyqtgraph) are made the first time they are needed.
The control bar is panels/run_controls.py, the log panels/run_log.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.gui.dialogs import is_expected
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.diagnosis import DiagnosisBanner, DiagnosisPanel, offer_remedy
from finetune_gui.gui.panels.probe_plots import ProbePlots
from finetune_gui.gui.panels.run_controls import RunControls, baseline_unfit_reason
from finetune_gui.gui.panels.run_log import RunLog
from finetune_gui.gui.panels.training_plots import TrainingPlots
from finetune_gui.gui.run_history import load_run_history
from finetune_gui.gui.wording import reword

#: (object name, text) of the epoch, step, speed and ETA labels before a run reports them
BLANK_STATS = (
    ("monitor-epoch", "Epoch –"),
    ("monitor-step", "Step –"),
    ("monitor-speed", "– samples/s"),
    ("monitor-eta", "ETA –"),
)


def format_duration(seconds: float) -> str:
    if math.isnan(seconds) or seconds < 0 or seconds > 1e7:  # NaN, negative or absurd
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def format_metrics(metrics: dict[str, float]) -> str:
    return " · ".join(f"{k} {v:.4g}" for k, v in metrics.items())


class MonitorPage(Page):
    key = "monitor"
    title = "Train"
    # Start and Quick baseline ask the window, which may question the data first and then calls start() or
    # start_baseline()
    start_requested = Signal()
    baseline_requested = Signal()

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self._live_run: str | None = None  # the run folder of the run going now
        self._ended: str | None = None  # how the live run ended, once it has
        self._history_for: str | None = None
        self._resumable = False
        self._build()
        bridge.run_started.connect(self._on_run_started)
        bridge.step.connect(self._on_step)
        bridge.epoch.connect(self._on_epoch)
        bridge.log.connect(self._on_log)
        bridge.checkpoint.connect(self._on_checkpoint)
        bridge.early_stopped.connect(self._on_early_stopped)
        bridge.run_finished.connect(self._on_finished)
        bridge.run_failed.connect(self._on_failed)
        bridge.diagnosis.connect(lambda e: self._show_findings(list(e.findings)))
        bridge.probed.connect(self.probe_plots.show_probes)
        bridge.training_changed.connect(self._on_training_changed)
        bridge.paused_changed.connect(self._on_paused)
        state.run_changed.connect(self._on_run_changed)
        state.model_readiness_changed.connect(self._update_buttons)
        state.changed.connect(lambda _section: self._update_buttons())  # a causal-LM task has no baseline
        self._update_buttons()

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        self.controls = RunControls()
        self.controls.go_to_model.connect(lambda: self.navigate.emit("model"))
        c = self.controls
        self.start_button, self.baseline_button, self.run_label = c.start_button, c.baseline_button, c.run_label
        self.pause_button, self.stop_button, self.resume_run_button = c.pause_button, c.stop_button, c.resume_run_button
        self.blocked, self.blocked_label = c.blocked, c.blocked_label
        self.start_button.clicked.connect(self.start_requested.emit)
        self.baseline_button.clicked.connect(self.baseline_requested.emit)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.bridge.stop)
        self.resume_run_button.clicked.connect(self.resume_run)

        self.progress = QProgressBar()
        self.progress.setObjectName("monitor-progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.epoch_label, self.step_label, self.speed_label, self.eta_label = (
            self._stat(name, text) for name, text in BLANK_STATS
        )
        stats = QHBoxLayout()
        for w in (self.epoch_label, self.step_label, self.speed_label, self.eta_label):
            stats.addWidget(w)
        stats.addStretch(1)
        self.info_label = QLabel("")
        self.info_label.setObjectName("monitor-info")
        self.info_label.setStyleSheet("color: palette(dark);")
        stats.addWidget(self.info_label)

        self.plot_area = TrainingPlots()

        self.log_view = RunLog()
        self.banner = DiagnosisBanner()
        self.diagnosis = DiagnosisPanel(
            "Nothing wrong found so far. Findings appear here as soon as the run shows them."
        )
        self.diagnosis.apply.connect(lambda remedy: offer_remedy(self, self.state, remedy))
        self.probe_plots = ProbePlots()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("monitor-tabs")
        for widget, name in (
            (self.log_view, "Log"),
            (self.diagnosis, "Diagnosis"),
            (self.probe_plots, "Inside the model"),
        ):
            self.tabs.addTab(widget, name)
        self.banner.show_all.connect(lambda: self.tabs.setCurrentWidget(self.diagnosis))
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plot_area)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([480, 180])
        splitter.setChildrenCollapsible(False)

        self.status_label = QLabel("Set up data, model and training, then press Start training.")
        self.status_label.setObjectName("monitor-status")
        self.status_label.setWordWrap(True)
        self.status_label.setStyleSheet("font-weight: 600;")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(self.controls)
        layout.addWidget(self.progress)
        layout.addLayout(stats)
        layout.addWidget(self.banner)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status_label)

    def _stat(self, name: str, text: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        label.setMinimumWidth(110)
        return label

    @property
    def plots(self) -> dict[str, Any]:
        """The live plots by name ("loss", "metric", "lr", "grad"); empty until first needed."""
        return self.plot_area.plots

    def ensure_plots(self) -> None:
        self.plot_area.ensure()

    def on_shown(self) -> None:
        self.ensure_plots()

    # ------------------------------------------------------------ actions

    def start(self) -> None:
        if self.bridge.is_training or self.state.model_ready is False:
            return
        self._ended = None
        self._show_new_run()
        self.status_label.setText("Preparing the data and the model…")
        n = self.state.processes
        self.log_view.add_line("info", "starting a new run" + (f" in {n} processes under torchrun" if n > 1 else ""))
        several = {"mode": "child", "nproc": n} if n > 1 else {}  # under torchrun, in a child process
        self.bridge.start_training(self.state.config, self.state.output_dir(), suggested_lr=self.state.suggested_lr(),
                                   **several)  # fmt: skip

    def start_baseline(self) -> None:
        if self.bridge.is_training or self.state.model_ready is False or baseline_unfit_reason(self.state.config):
            return
        self._ended = None
        self._show_new_run()
        self.status_label.setText("Preparing the data and the model for a quick baseline…")
        self.log_view.add_line("info", "starting a quick baseline: a linear probe on the frozen model's features")
        self.bridge.start_baseline(self.state.config, self.state.output_dir())

    def toggle_pause(self) -> None:
        if self.bridge.is_paused:
            self.bridge.resume()
        else:
            self.bridge.pause()

    def resume_run(self) -> None:
        run = self.state.run_dir
        if run is None or self.bridge.is_training:
            return
        self._ended = None
        self.status_label.setText(f"Resuming {run.name} from its newest checkpoint…")
        self.log_view.add_line("info", f"resuming {run}")
        self.bridge.resume_training(run)

    def _update_buttons(self) -> None:
        self.controls.show_state(
            self.state.config,
            training=self.bridge.is_training,
            model_reason=self.state.model_reason if self.state.model_ready is False else None,
            resumable=self._resumable and self.state.run_dir is not None,
            pause_unavailable=self.bridge.pause_unavailable,
        )

    # ------------------------------------------------------------ live events

    def _on_run_started(self, e) -> None:
        self.ensure_plots()
        self._live_run, self._ended, self._resumable = e.run_dir, None, False
        self._epochs, self._total = e.epochs, max(1, e.total_steps)
        if e.resumed_from_step:  # the resumed run redoes what came after its checkpoint
            self.plot_area.drop_after(e.resumed_from_step, e.steps_per_epoch)
        else:
            self._clear_plots()
        self.progress.setValue(int(1000 * e.resumed_from_step / self._total))
        self.run_label.setText(f"Run folder: {e.run_dir}")
        self.run_label.setToolTip(e.run_dir)
        trainable = f"{e.trainable_params:,} of {e.total_params:,} parameters train"
        self.info_label.setText(
            f"{e.device} · {e.precision} · {e.num_train}/{e.num_val}/{e.num_test} samples "
            f"(train/val/test) · {trainable}"
        )
        self.status_label.setText(f"Training on {e.device}…")
        self.log_view.add_line(
            "info",
            f"run started in {e.run_dir}"
            + (f" (resumed at step {e.resumed_from_step})" if e.resumed_from_step else ""),
        )
        self.state.set_run_dir(e.run_dir)

    def _on_step(self, e) -> None:
        self.progress.setValue(int(1000 * e.step / max(1, e.total_steps)))
        self.epoch_label.setText(f"Epoch {e.epoch + 1}/{getattr(self, '_epochs', '?')}")
        self.step_label.setText(f"Step {e.step}/{e.total_steps}")
        self.speed_label.setText(f"{e.samples_per_s:,.1f} samples/s")
        self.eta_label.setText(f"ETA {format_duration(e.eta_s)}")
        self.plot_area.add_step(e)

    def _on_epoch(self, e) -> None:
        self.plot_area.add_epoch(e.epoch + 1, e.step, e.metrics)
        self.epoch_label.setText(f"Epoch {e.epoch + 1}/{getattr(self, '_epochs', '?')}")
        self.log_view.add_line(
            "info", f"epoch {e.epoch + 1}: {format_metrics(e.metrics)} ({format_duration(e.elapsed_s)})"
        )

    def _on_log(self, level: str, text: str) -> None:
        self.log_view.add_line(level, text)

    def _on_checkpoint(self, e) -> None:
        what = "best checkpoint" if e.is_best else "checkpoint"
        self.log_view.add_line("info", f"{what} saved at step {e.step}: {Path(e.path).name}")

    def _on_early_stopped(self, e) -> None:
        self.log_view.add_line(
            "info",
            f"early stop after epoch {e.epoch + 1}: {e.metric} best {e.best_value:.4g} at epoch {e.best_epoch + 1}",
        )

    def _on_finished(self, e) -> None:
        self._ended = e.status
        self.progress.setValue(1000)
        tested = format_metrics(e.test_metrics) or "no test split"
        self.status_label.setText(f"Run {e.status}. Test: {tested}")
        self.log_view.add_line("info", f"run {e.status}; test: {tested}")

    def _on_failed(self, e) -> None:
        if self._live_run is None:  # it failed before its first step: no run folder to show
            self.run_label.setText("The run failed before it started")
        self._ended = "failed"
        self.status_label.setText(f"Run failed ({e.error_type}): {reword(e.message, self)}")
        self.log_view.add_line("error", f"{e.error_type}: {e.message}")

    def _on_training_changed(self, training: bool) -> None:
        if not training:
            if self._ended is None:  # stopped (a run in a child process may stop before it has begun)
                self._ended, self._resumable = "stopped", bool(self._live_run)
                said = "Run stopped. A checkpoint was saved; Resume run continues it." if self._live_run else ""
                self.status_label.setText(said or "Stopped before the run started.")
                self.log_view.add_line(
                    "info", "run stopped; a checkpoint was saved" if self._live_run else "run stopped"
                )
            self.pause_button.setText("Pause")
            self._live_run = None
        self._update_buttons()

    def _on_paused(self, paused: bool) -> None:
        # "Continue", not "Resume": "Resume run" next to it continues a stopped run from its checkpoint
        self.pause_button.setText("Continue" if paused else "Pause")
        if self.bridge.is_training:
            self.status_label.setText("Paused. Press Continue to go on." if paused else "Training…")

    # ------------------------------------------------------------ previous runs

    def _on_run_changed(self, path: str) -> None:
        if not path:
            self._resumable = False
            self._update_buttons()
            return
        if self._live_run and Path(path) == Path(self._live_run):
            return  # our own run, being drawn live
        if self.bridge.is_training:
            return  # the live curves stay; the run can be looked at once training ends
        self._history_for = path
        self.status_label.setText(f"Loading the curves of {Path(path).name}…")
        self.bridge.run_task(load_run_history, path, on_result=self._show_history, on_error=self._history_failed)

    def _show_history(self, history: dict[str, Any]) -> None:
        if history["run_dir"] != self._history_for or self.bridge.is_training:
            return
        self.ensure_plots()
        self._clear_plots()
        epochs = history["epochs"]
        for row in epochs:
            self.plot_area.add_epoch(int(row.get("epoch", 0)), int(row.get("step", 0)), row)
        self.plot_area.set_steps(history["steps"] or epochs)  # a run from before steps.jsonl: the epochs' LRs
        if not history["steps"]:
            self.plots["grad"].clear("This run did not save its gradient norms.")
        self.plot_area.refresher.flush()  # a finished run's curves appear together
        status = history["status"]
        state = status.get("state", "unknown")
        step, total = int(status.get("step", 0) or 0), int(status.get("total_steps", 0) or 0)
        self.progress.setValue(1000 if state in ("completed", "early-stopped") else int(1000 * step / max(1, total)))
        self.epoch_label.setText(f"Epoch {epochs[-1]['epoch']}" if epochs else "Epoch –")
        self.step_label.setText(f"Step {step}/{total}" if total else f"Step {step}")
        self.speed_label.setText("– samples/s")
        self.eta_label.setText("ETA –")
        self.info_label.setText("")
        run = history["run_dir"]
        self.run_label.setText(f"Run folder: {run}")
        self.run_label.setToolTip(run)
        summary = [
            f"epoch {r.get('epoch')}: "
            + format_metrics({k: v for k, v in r.items() if k.startswith(("train_", "val_"))})
            for r in epochs
        ]
        self.log_view.show_text("\n".join(history["log"] + ["— metrics per epoch (metrics.jsonl) —"] + summary))
        self._resumable = bool(history["resumable"])
        said = "This run was trained before diagnostics were kept." if history["findings"] is None else None
        self._show_findings(history["findings"] or [], said)
        test = history["test"]
        tested = format_metrics({k: v for k, v in test.items() if k.startswith("test_")}) if test else ""
        text = f"Previous run, {state}."
        if tested:
            text += f" Test: {tested}"
        if state == "failed" and status.get("message"):
            text += f" Error: {status['message']}"
        if self._resumable:
            text += " Resume run continues it from its newest checkpoint."
        self.status_label.setText(text)
        self._update_buttons()

    def _history_failed(self, error_type: str, message: str, details: str) -> None:
        self._resumable = False
        self._update_buttons()
        self.status_label.setText(f"Could not read the run: {message}")
        if not is_expected(error_type):  # said above; only a fault of the app gets the dialog
            self.error.emit(error_type, message, details)

    # ------------------------------------------------------------ helpers

    def _show_new_run(self) -> None:
        """A new run is starting: nothing of the previous one (plots, folder, 100% bar) stays on screen."""
        self._clear_plots()
        self.run_label.setText("Starting a new run…")
        self.run_label.setToolTip("")
        self.info_label.setText("")
        for label, (_, text) in zip((self.epoch_label, self.step_label, self.speed_label, self.eta_label), BLANK_STATS):
            label.setText(text)

    def _clear_plots(self) -> None:
        self.plot_area.clear()
        self.probe_plots.clear()
        self._show_findings([])
        self.progress.setValue(0)

    def _show_findings(self, findings: list[dict[str, Any]], empty_text: str | None = None) -> None:
        self.banner.set_findings(findings)
        self.diagnosis.set_findings(findings, empty_text)
        self.tabs.setTabText(1, f"Diagnosis ({len(findings)})" if findings else "Diagnosis")
