"""The training setup page: optimiser, schedule, length, hardware, speed and early stopping, with a plot of the
learning rate over every planned step, an LR finder and a batch-size finder. Its Quick baseline button asks the
window (`baseline_requested`), which checks the data as for Start training and fits it on the Train page.

The LR plan comes from core.training.optim.planned_lrs in a worker thread (it imports torch); the LR finder and
the batch-size finder are panels (panels/finders.py). The plots (pyqtgraph) are made the first time the page shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.config import field_info
from finetune_gui.core import plan
from finetune_gui.gui.pages.base import Page
from finetune_gui.gui.panels.finders import BatchSizeFinder, LRFinderPanel
from finetune_gui.gui.panels.launch_command import LaunchCommandDialog
from finetune_gui.gui.panels.run_controls import BASELINE_TIP, baseline_unfit_reason, push_button
from finetune_gui.gui.widgets.config_form import ConfigForm, widen_number_editors
from finetune_gui.gui.widgets.width_fitting_scroll import WidthFittingScrollArea

LR_DEBOUNCE_MS = 150
SCHEDULE_KNOBS = ("warmup_fraction", "step_epochs", "milestones", "gamma", "min_lr_ratio", "plateau_patience")
LP_FT_KNOBS = ("lp_epochs", "ft_lr_mult")  # shown with the lp-ft recipe only
KNOBS_BY_SCHEDULE = {
    "constant": (),
    "step": ("step_epochs", "gamma"),
    "multistep": ("milestones", "gamma"),
    "exponential": ("gamma",),
    "cosine": ("min_lr_ratio",),
    "linear-warmup": ("warmup_fraction", "min_lr_ratio"),
    "cosine-warmup": ("warmup_fraction", "min_lr_ratio"),
    "one-cycle": ("warmup_fraction",),
    "plateau": ("plateau_patience", "gamma"),
}
KNOBS_BY_OPTIMIZER = {"sgd": ("momentum", "nesterov"), "rmsprop": ("momentum",)}
SEPARATE_PROCESS_TIP = (
    "Train in a child process (the finetune-gui train command) that the app follows through the run's event "
    "stream, instead of in a thread of the app. Such a run cannot pause; Stop saves a checkpoint. A setting of this "
    "computer, not of the run: presets do not keep it."
)


# ---------------------------------------------------------------- worker jobs (off the main thread)


def lr_plan_job(train, total_steps: int, steps_per_epoch: int) -> list[float]:
    from finetune_gui.core.training.optim import planned_lrs

    return planned_lrs(train, total_steps, steps_per_epoch)


ALL_GPUS = "all-gpus"  # the device choice that trains on every GPU, one process each (torchrun)


def devices_job() -> tuple[list[tuple[str, str]], str]:
    """The devices of this machine as (name, description), and the one train.device "auto" picks among them."""
    from finetune_gui.core.devices import available_devices, pick_device

    return [(d.name, d.description) for d in available_devices()], str(pick_device("auto"))


# ---------------------------------------------------------------- plain helpers


class _CloseWatcher(QObject):
    """Stops the LR finder and the batch-size search when the window closes, so quitting does not wait for them."""

    def __init__(self, page: SetupPage):
        super().__init__(page)
        self.page = page

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Close:
            self.page.lr_finder.stop()
            self.page.batch_size_finder.stop()
        return False


# ---------------------------------------------------------------- the page


class SetupPage(Page):
    key = "setup"
    title = "Training setup"
    # Quick baseline asks the window, which may question the data first and then starts it on the Train page
    baseline_requested = Signal()

    def __init__(self, state, bridge, parent: QWidget | None = None):
        super().__init__(state, bridge, parent)
        self.lr_curve = None  # widgets.lr_curve.LRCurve, made on first show
        self._lr_busy = False
        self._lr_pending = False
        self._lr_request: tuple[int, int] = (0, 1)
        self._devices: list[tuple[str, str]] | None = None
        self._auto_device: str | None = None  # what "auto" picks; None until the devices are listed
        self._devices_busy = False
        self._watcher = _CloseWatcher(self)
        self._lr_timer = QTimer(self)
        self._lr_timer.setSingleShot(True)
        self._lr_timer.setInterval(LR_DEBOUNCE_MS)
        self._lr_timer.timeout.connect(self.redraw_lr_plan)
        self._build()
        state.changed.connect(self._on_changed)
        state.scan_changed.connect(lambda _: self._on_changed("data"))
        state.model_readiness_changed.connect(self._update_baseline_button)
        bridge.training_changed.connect(lambda _training: self._update_baseline_button())
        self._on_changed("")

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        train = "train"
        self.optimizer_form = ConfigForm(
            self.state, train, ["optimizer", "lr", "momentum", "nesterov", "weight_decay", "l1"]
        )
        self.schedule_form = ConfigForm(self.state, train, ["schedule", *SCHEDULE_KNOBS, "recipe", *LP_FT_KNOBS])
        self.length_form = ConfigForm(
            self.state, train, ["epochs", "batch_size", "grad_accum", "max_steps", "grad_clip", "log_every"]
        )
        self.device_combo = QComboBox()
        self.device_combo.setObjectName("train.device")
        self.device_combo.setToolTip(field_info("train", "device")[0])
        self.device_combo.activated.connect(self._device_chosen)
        self.hardware_form = ConfigForm(self.state, train, ["seed", "deterministic", "strategy", "sync_batchnorm"])
        self.hardware_form.layout().insertRow(0, "Device", self.device_combo)
        self.launch_button = push_button(
            "Copy launch command…",
            "setup-launch-command",
            "The torchrun command that trains this config on several GPUs or machines",
        )
        self.launch_button.clicked.connect(self.show_launch_command)
        self.hardware_form.layout().insertRow(1, "", self.launch_button)
        self.separate_process_box = QCheckBox("Run training in a separate process")
        self.separate_process_box.setObjectName("separateProcess")
        self.separate_process_box.setToolTip(SEPARATE_PROCESS_TIP)
        self.separate_process_box.setChecked(self.bridge.separate_process)
        self.separate_process_box.toggled.connect(lambda on: setattr(self.bridge, "separate_process", on))
        self.hardware_form.layout().insertRow(2, "", self.separate_process_box)
        speed_knobs = ["precision", "memory_format", "compile", "feature_cache", "feature_cache_aug_copies"]
        self.speed_form = ConfigForm(self.state, train, speed_knobs)
        self.loss_form = ConfigForm(self.state, train, ["label_smoothing", "class_weights"])
        self.stopping_form = ConfigForm(self.state, "early_stopping")
        self.logging_form = ConfigForm(self.state, "logging")
        self.forms = [
            self.optimizer_form,
            self.schedule_form,
            self.length_form,
            self.hardware_form,
            self.speed_form,
            self.loss_form,
            self.stopping_form,
            self.logging_form,
        ]
        for form in self.forms:
            widen_number_editors(form)
        self.batch_size_finder = BatchSizeFinder(self.state, self.bridge)
        self.batch_size_finder.error.connect(self.error)

        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 6, 0)
        groups = [
            ("Optimiser", self.optimizer_form),
            ("Learning-rate schedule and recipe", self.schedule_form),
            ("Length, batches and logs", self.length_form),
            ("Early stopping", self.stopping_form),
            ("Hardware and repeatability", self.hardware_form),
            ("Speed", self.speed_form),
            ("Loss", self.loss_form),
        ]
        for i, (title, form) in enumerate(groups):
            box = QGroupBox(title)
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(8, 4, 8, 4)
            form.layout().setContentsMargins(0, 0, 0, 0)
            box_layout.addWidget(form)
            if form is self.length_form:
                box_layout.addWidget(self.batch_size_finder)
                self.logging_form.layout().setContentsMargins(0, 0, 0, 0)
                box_layout.addWidget(self.logging_form)
            box_layout.addStretch(1)
            grid.addWidget(box, i // 2, i % 2)
        grid.setRowStretch(4, 1)
        forms = QWidget()
        forms.setLayout(grid)
        scroll = WidthFittingScrollArea()
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(forms)

        plan_box = QGroupBox("Learning rate over the run")
        self._plan_layout = QVBoxLayout(plan_box)
        self.steps_label = QLabel()
        self.steps_label.setObjectName("stepsLabel")
        self.steps_label.setWordWrap(True)
        self._plan_layout.addWidget(self.steps_label)

        plots = QVBoxLayout()
        plots.addWidget(plan_box, 1)
        self.lr_finder = LRFinderPanel(self.state, self.bridge)
        self.lr_finder.error.connect(self.error)
        plots.addWidget(self.lr_finder, 1)

        heading = QHBoxLayout()
        heading.addWidget(QLabel("<h2>Training setup</h2>"))
        heading.addStretch(1)
        self.baseline_note = QLabel()  # what Quick baseline gives, or why it is off
        self.baseline_note.setObjectName("setup-baseline-note")
        self.baseline_note.setStyleSheet("color: palette(dark);")
        heading.addWidget(self.baseline_note)
        self.baseline_button = push_button("Quick baseline", "setup-baseline", BASELINE_TIP)
        self.baseline_button.clicked.connect(self.baseline_requested.emit)
        heading.addWidget(self.baseline_button)
        body = QHBoxLayout()
        body.addWidget(scroll, 11)
        body.addLayout(plots, 9)
        layout = QVBoxLayout(self)
        layout.addLayout(heading)
        layout.addLayout(body, 1)

    def _ensure_plots(self) -> None:
        """Make the pyqtgraph plots (importing pyqtgraph) once the page is first shown."""
        if self.lr_curve is not None:
            return
        from finetune_gui.gui.widgets.lr_curve import LRCurve

        self.lr_curve = LRCurve()
        self._plan_layout.insertWidget(0, self.lr_curve, 1)
        self.lr_finder.ensure_plot()

    # ------------------------------------------------------------ showing and syncing
    def on_first_shown(self) -> None:
        self._ensure_plots()
        window = self.window()
        if window is not self:
            window.installEventFilter(self._watcher)
        self.refresh_devices()
        self.redraw_lr_plan()

    def _update_baseline_button(self) -> None:
        """On, or off with its reason beside it: a run is going, the model cannot be had, or the task has no
        labels to probe."""
        config, no_model = self.state.config, self.state.model_ready is False
        off = baseline_unfit_reason(config)
        self.baseline_button.setEnabled(not self.bridge.is_training and not no_model and not off)
        if off:
            note, tip = "Off for a causal language model", off
        elif no_model:
            note = "Off until the model can be loaded (Model page)"
            tip = f"Quick baseline is off until the model can be loaded: {self.state.model_reason}"
        else:
            note, tip = "The score to beat, in seconds:", BASELINE_TIP
        self.baseline_note.setText(note)
        self.baseline_button.setToolTip(tip)
        self.baseline_note.setToolTip(tip)

    def _on_changed(self, section: str) -> None:
        if section in ("", "task", "model"):
            self._update_baseline_button()
        if section in ("", "train"):
            self._show_relevant_knobs()
            self._sync_device_combo()
        if section in ("", "train", "data", "task"):
            self._update_steps_label()
            if self.shown_once:
                self._lr_timer.start()

    def _show_relevant_knobs(self) -> None:
        t = self.state.config.train
        wanted = set(KNOBS_BY_SCHEDULE.get(t.schedule, SCHEDULE_KNOBS)) | set(KNOBS_BY_OPTIMIZER.get(t.optimizer, ()))
        wanted |= set(LP_FT_KNOBS) if t.recipe == "lp-ft" else set()
        for form, keys in (
            (self.schedule_form, SCHEDULE_KNOBS + LP_FT_KNOBS),
            (self.optimizer_form, ("momentum", "nesterov")),
        ):
            layout: QFormLayout = form.layout()
            for key in keys:
                visible = key in wanted
                layout.setRowVisible(form.editors[key], visible)
                error = form.errors[key]
                layout.setRowVisible(error, visible and bool(error.text()))

    def knob_visible(self, key: str) -> bool:
        """Whether the editor of train.`key` is shown (schedule and optimiser knobs depend on the choice)."""
        for form in self.forms:
            if key in form.editors:
                return not form.editors[key].isHidden()
        raise KeyError(key)

    def _update_steps_label(self) -> None:
        _, _, text = plan.planned_steps(self.state.config, self.state.scan)
        self.steps_label.setText(text)

    # ------------------------------------------------------------ the LR plan
    def redraw_lr_plan(self) -> None:
        """Work out the LR at every planned step in a worker and plot it (one job at a time; the newest wins)."""
        if self._lr_busy:
            self._lr_pending = True
            return
        config = self.state.config
        per_epoch, total, _ = plan.planned_steps(config, self.state.scan)
        self._lr_busy, self._lr_pending = True, False
        self._lr_request = (total, per_epoch)
        train = config.train.model_copy(deep=True)
        self.bridge.run_task(
            lr_plan_job, train, total, per_epoch, on_result=self._lr_plan_ready, on_error=self._lr_plan_failed
        )

    def _lr_plan_ready(self, lrs: list[float]) -> None:
        self._lr_busy = False
        if self._lr_pending:
            self.redraw_lr_plan()
            return
        self._ensure_plots()
        self.lr_curve.set_lrs(lrs, self._lr_request[1])

    def _lr_plan_failed(self, error_type: str, message: str, details: str) -> None:
        self._lr_busy = False
        if self._lr_pending:
            self.redraw_lr_plan()
            return
        self._ensure_plots()
        self.lr_curve.show_hint(f"The learning-rate plan cannot be drawn: {message}")
        self.error.emit(error_type, message, details)

    @property
    def lr_plan_pending(self) -> bool:
        """True while a redraw is waiting or computing (tests wait for it to end)."""
        return self._lr_busy or self._lr_pending or self._lr_timer.isActive()

    def show_launch_command(self) -> LaunchCommandDialog:
        out = self.state.output_dir() or self.state.config.resolve(self.state.config.checkpoint.output_dir)
        dialog = LaunchCommandDialog(self.state.config, Path(out), self)
        dialog.open()
        return dialog

    # ------------------------------------------------------------ devices
    def refresh_devices(self) -> None:
        if self._devices_busy:
            return
        self._devices_busy = True
        self.bridge.run_task(devices_job, on_result=self._devices_found, on_error=self._devices_failed)

    def _devices_found(self, found: tuple[list[tuple[str, str]], str]) -> None:
        self._devices_busy = False
        self._devices, self._auto_device = found
        self._sync_device_combo()

    def _devices_failed(self, error_type: str, message: str, details: str) -> None:
        self._devices_busy = False
        self._devices = []
        self._sync_device_combo()
        self.error.emit(error_type, f"The devices of this machine could not be listed: {message}", details)

    def _sync_device_combo(self) -> None:
        """Items: auto, then the devices found; the configured device is added if it is not among them."""
        current = self.state.config.train.device
        if self._devices is None:
            items = [("auto", "auto"), ("", "looking for devices…")]
        else:
            items = [("auto", f"auto ({self._auto_device} here)" if self._auto_device else "auto")]
            items += [(name, f"{name} — {desc}") for name, desc in self._devices]
            gpus = sum(name.startswith("cuda:") for name, _ in self._devices)
            if gpus > 1:
                items.insert(1, (ALL_GPUS, f"all {gpus} GPUs — one process each, under torchrun"))
        names = [n for n, _ in items]
        if current not in names:
            found = self._devices is not None
            items.append((current, f"{current} — not found on this machine" if found else current))
        self.device_combo.blockSignals(True)
        try:
            self.device_combo.clear()
            for name, text in items:
                self.device_combo.addItem(text, name)
                if not name:
                    self.device_combo.model().item(self.device_combo.count() - 1).setEnabled(False)
            all_gpus = self.state.processes > 1 and self.device_combo.findData(ALL_GPUS) >= 0
            self.device_combo.setCurrentIndex(self.device_combo.findData(ALL_GPUS if all_gpus else current))
        finally:
            self.device_combo.blockSignals(False)

    def device_names(self) -> list[str]:
        return [
            self.device_combo.itemData(i)
            for i in range(self.device_combo.count())
            if self.device_combo.itemData(i) not in ("", ALL_GPUS)
        ]

    def _device_chosen(self, index: int) -> None:
        name = self.device_combo.itemData(index)
        gpus = [n for n in self.device_names() if n.startswith("cuda:")]
        self.state.processes = len(gpus) if name == ALL_GPUS else 1
        if name:
            self._set_train("device", "cuda" if name == ALL_GPUS else name)

    def _set_train(self, key: str, value: Any) -> bool:
        """Set train.`key`; a refused value raises the error dialog. True when it was set."""
        message = self.state.set_value("train", key, value)
        if message:
            self.error.emit("ConfigError", message, "")
        return not message
