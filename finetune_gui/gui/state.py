"""The app's one shared state: the run config every page edits, plus what the workers found and loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import QObject, Signal

from finetune_gui.config import ConfigError, RunConfig, explain_error, validate_dict
from finetune_gui.core import plan
from finetune_gui.gui.predictor_cache import PredictorCache
from finetune_gui.gui.runs_folder import output_dir_for


class AppState(QObject):
    """Holds the RunConfig. Pages change it through `set_value` and listen to `changed`."""

    changed = Signal(str)  # the section that changed ("" = everything, e.g. a preset was loaded)
    config_path_changed = Signal(str)
    scan_changed = Signal(object)  # a core.data ScanReport, or None
    run_changed = Signal(str)  # the run folder shown on the monitor/evaluate pages
    notice = Signal(str)  # one line about a change the app made for the user (shown where the change began)
    model_readiness_changed = Signal()  # model_ready / model_reason changed
    model_folder_opened = Signal(str)  # a local model folder the user opened (remembered across sessions)

    def __init__(self, config: RunConfig | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._config = config or RunConfig()
        self.config_path: Path | None = None
        self.freeze_chosen = False  # the user picked model.freeze here (a preset's choice is a default)
        self.scan = None
        self.run_dir: Path | None = None
        self.predictors = PredictorCache()  # the run's loaded model, shared by Evaluate and Try it
        self.model_ready: bool | None = None  # whether config.model can be had here; None while not known
        self.model_reason = ""  # why not, in words, when model_ready is False
        self.recent_model_folders: list[str] = []  # newest first
        self.runs_folder: Path | None = None  # the app's runs folder (None: as config.checkpoint.output_dir says)
        self.processes = 1  # training processes: more than 1 ("all N GPUs") runs under torchrun in a child process
        self._built_key: tuple | None = None
        self._lr_suggestion: tuple[str, float] | None = None  # (plan.sweep_key of the setup, the finder's LR)

    @property
    def config(self) -> RunConfig:
        return self._config

    def set_config(self, config: RunConfig, path: str | Path | None = None) -> None:
        self._config = config
        self.freeze_chosen = False
        self.config_path = Path(path) if path else None
        self.config_path_changed.emit(str(path or ""))
        self.changed.emit("")

    def get_value(self, section: str, key: str) -> Any:
        obj: Any = self._config if not section else getattr(self._config, section)
        for part in key.split("."):
            obj = getattr(obj, part)
        return obj

    def set_value(self, section: str, key: str, value: Any) -> str | None:
        """Set one field; returns a field-level message instead of raising when the value is not allowed."""
        target: Any = self._config if not section else getattr(self._config, section)
        *parents, last = key.split(".")
        for part in parents:
            target = getattr(target, part)
        previous_task = self._config.task.kind
        previous_model = self._config.model.model_copy(deep=True)
        try:
            setattr(target, last, value)
        except ValidationError as e:
            return "; ".join(explain_error(dict(err, loc=(section, key)), RunConfig) for err in e.errors())
        self.changed.emit(section)
        if section == "model" and key in ("freeze", "frozen_modules", "unfreeze_last_n"):
            self.freeze_chosen = True
        if section == "task" and key == "kind":
            self._fit_model_to_task(previous_task)
            self._fit_freezing_to_task()
        if section in ("task", "model"):
            self._fit_lr(previous_task, previous_model)
        return None

    def _fit_lr(self, previous_task, previous_model) -> None:
        """An LR that was the usual one for the setup before follows to the usual one for the new setup
        (core.plan.lr_for_change): a transformer fine-tuned at a head's LR forgets what it learned."""
        c = self._config
        lr = plan.lr_for_change(c.train.lr, c.task.kind, previous_model, c.model, previous_task)
        if lr is None:
            return
        c.train.lr = lr
        self.changed.emit("train")
        why = "fine-tuning a pretrained transformer" if lr == plan.LR_TRANSFORMER else "this setup"
        self.notice.emit(f"Learning rate set to {lr:g}, the usual start for {why}.")

    def _fit_model_to_task(self, previous) -> None:
        """A task of another family (image, text, language model) gets that family's default model, and a
        notice says so (core.plan.model_for_task); a model that still fits stays."""
        task, model = self._config.task.kind, self._config.model
        name = plan.model_for_task(task, previous)
        if name is None or name == model.name:
            return
        old = model.name
        model.name, model.source, model.weights_path = name, "auto", ""
        self.changed.emit("model")
        what = {"image": "images", "text": "text", "causal-lm": "language modelling"}[plan.task_family(task)]
        self.notice.emit(f"Model set to {name}, the usual start for {what}: {old} was chosen for another kind of task.")

    def fit_freezing_to_weights(self, random_init: bool) -> str | None:
        """A model that starts from random weights trains every layer unless the user chose head-only here
        (core.plan.freezing_for_weights). Returns what to say beside the layers: why every layer now trains,
        or the warning for a head-only choice on random weights."""
        fitted = plan.freezing_for_weights(self._config.model, random_init)
        if fitted is None:
            return None
        if self.freeze_chosen:
            return plan.FROZEN_RANDOM_BACKBONE
        self._config.model.freeze = fitted
        self.changed.emit("model")
        why = (
            "No pretrained weights, so every layer trains: a random backbone has nothing to keep frozen "
            "(Head only is still there if you want it)."
        )
        self.notice.emit(why)
        return why

    def _fit_freezing_to_task(self) -> None:
        """Apply the task's freezing default (core.plan.freezing_for_task) when the current one cannot train."""
        fitted = plan.freezing_for_task(self._config.task.kind, self._config.model)
        if fitted is not None:
            self._config.model.freeze, self._config.model.unfreeze_last_n = fitted
            self.changed.emit("model")

    def model_key(self) -> tuple:
        """What decides whether the model can be had: readiness reports for another key are stale."""
        c = self._config
        m = c.model
        family = plan.task_family(c.task.kind)
        return (family, m.name, m.source, m.pretrained, m.weights, m.weights_path, m.allow_random_init, str(c.base_dir))

    def set_model_readiness(self, key: tuple, ready: bool | None, reason: str = "", *, built: bool = False) -> None:
        """Whether the model of `key` can be used (None: being found out); ignored when the model changed since.
        `built`: the answer of building the model, which a quicker check afterwards does not overrule."""
        if key != self.model_key() or (not built and key == self._built_key):
            return
        if built:
            self._built_key = key
        if (ready, reason) == (self.model_ready, self.model_reason):
            return
        self.model_ready, self.model_reason = ready, reason if ready is False else ""
        self.model_readiness_changed.emit()

    def remember_lr_suggestion(self, config: RunConfig, lr: float | None) -> None:
        """The LR finder's suggestion for the setup of `config` (the config the sweep ran on)."""
        self._lr_suggestion = (plan.sweep_key(config), lr) if lr else None

    def suggested_lr(self) -> float | None:
        """The LR finder's suggestion, while the setup is still the one it measured."""
        if self._lr_suggestion and self._lr_suggestion[0] == plan.sweep_key(self._config):
            return self._lr_suggestion[1]
        return None

    def output_dir(self) -> Path | None:
        """Where the next run's folder is made (None: where config.checkpoint.output_dir says)."""
        return None if self.runs_folder is None else output_dir_for(self._config, self.runs_folder)

    def remember_model_folder(self, path: str) -> None:
        self.recent_model_folders = [path, *(p for p in self.recent_model_folders if p != path)][:10]
        self.model_folder_opened.emit(path)

    def replace_from_dict(self, data: dict[str, Any]) -> list[str]:
        """Validate a whole config dict; on success it becomes the config. Returns the problems, if any."""
        try:
            config = validate_dict(data).with_base_dir(self._config.base_dir)
        except ConfigError as e:
            return e.problems
        self.set_config(config, self.config_path)
        return []

    def set_scan(self, report) -> None:
        self.scan = report
        self.scan_changed.emit(report)

    def set_run_dir(self, path: str | Path | None) -> None:
        self.run_dir = Path(path) if path else None
        self.run_changed.emit(str(path or ""))
