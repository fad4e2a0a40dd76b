"""`[logging] tensorboard = true` writes TensorBoard event files into the run folder (issue 14): the step and epoch
curves, the settings and final metrics for the HParams tab, and a resumed run's curves with each step once."""

from __future__ import annotations

import builtins

import pytest

from finetune_gui.config import load_config
from finetune_gui.core.errors import FinetuneError
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EventLog, LogMessage
from finetune_gui.core.training.hooks import TrainingHook
from tests.integration.test_cli_train import image_config

pytest.importorskip("tensorboard")


def scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows: tag -> (step, value), read with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def config(tmp_path, tensorboard=True):
    path = image_config(tmp_path, train={"epochs": 2, "batch_size": 4, "log_every": 1},
                        logging={"tensorboard": tensorboard})  # fmt: skip
    return load_config(path)


def test_a_run_writes_its_curves_and_settings_for_tensorboard(tmp_path):
    result = fit(config(tmp_path), output_dir=tmp_path / "runs")
    assert result.status == "completed"
    assert list(result.run_dir.glob("events.out.tfevents.*")), "the event files are in the run folder"

    seen = scalars(result.run_dir)
    steps = [s for s, _ in seen["train/loss"]]
    assert steps == sorted(steps) and steps[0] == 1 and len(steps) >= 8
    assert {"train/lr", "epoch/train_loss", "epoch/val_loss", "epoch/val_accuracy"} <= set(seen)
    assert len(seen["epoch/val_loss"]) == 2  # one point per epoch
    assert {"final/val_accuracy", "final/test_accuracy"} <= set(seen)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(result.run_dir))
    acc.Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["train.lr"].number_value == pytest.approx(cfg_lr(result.run_dir))
    assert start.hparams["model.name"].string_value == "resnet18"
    assert start.hparams["status"].string_value == "completed"


def cfg_lr(run_dir) -> float:
    return load_config(run_dir / "config.toml").train.lr


def test_tensorboard_logs_are_off_unless_asked_for(tmp_path):
    result = fit(config(tmp_path, tensorboard=False), output_dir=tmp_path / "runs")
    assert not list(result.run_dir.glob("events.out.tfevents.*"))


class CrashAtStep(TrainingHook):
    """A failure after the last checkpoint: the steps logged since then are logged again on resume."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, step) -> None:
        if step.step == self.step:
            raise FinetuneError("the machine went away")


def test_a_resumed_run_shows_each_step_once(tmp_path):
    cfg = config(tmp_path)
    crashed = fit(cfg, hooks=(CrashAtStep(8),), output_dir=tmp_path / "runs")  # checkpoint at the epoch end, step 5
    assert crashed.status == "failed"
    assert resume(crashed.run_dir, hooks=()).status == "completed"

    steps = [s for s, _ in scalars(crashed.run_dir)["train/loss"]]
    assert steps == sorted(set(steps)) == list(range(1, 11))


def test_without_the_tensorboard_package_the_run_goes_on_and_says_how_to_get_it(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    log = EventLog()
    result = fit(config(tmp_path), log, output_dir=tmp_path / "runs")
    assert result.status == "completed"
    warnings = [e.text for e in log.of(LogMessage) if e.level == "warning" and "TensorBoard" in e.text]
    assert len(warnings) == 1 and "pip install tensorboard" in warnings[0]
