"""Stopping, resuming and early stopping, through the engine the CLI and the GUI share."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file

from finetune_gui.cli import main
from finetune_gui.config import load_config
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EarlyStopped, EpochMetrics, EventLog, LogMessage, RunControl, StepMetrics
from tests.integration.test_cli_train import image_config


def weights_equal(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def test_stopped_and_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    cfg_path = image_config(
        tmp_path, train={"epochs": 3, "batch_size": 4}, augment={"random_resized_crop": True, "hflip": 0.5}
    )
    config = load_config(cfg_path)

    straight = fit(config, EventLog(), output_dir=tmp_path / "straight")
    assert straight.status == "completed"

    control = RunControl()

    # 36 images, half held out → 18 to train on, 5 steps per epoch at batch 4: step 7 is inside epoch 2
    def stop_at_step(event):
        if isinstance(event, StepMetrics) and event.step == 7:
            control.stop()

    first = fit(config, stop_at_step, control, output_dir=tmp_path / "interrupted")
    assert first.status == "stopped"
    log = EventLog()
    second = resume(first.run_dir, log)
    assert second.status == "completed"
    assert log.events[0].__class__.__name__ in ("LogMessage", "RunStarted")
    assert weights_equal(straight.run_dir / "model.safetensors", second.run_dir / "model.safetensors")


def test_cli_resume_continues_a_stopped_run(tmp_path):
    config = load_config(image_config(tmp_path))
    control = RunControl()
    control.stop()  # stops right after the first step
    first = fit(config, None, control, output_dir=tmp_path / "runs")
    assert first.status == "stopped"
    assert main(["resume", str(first.run_dir)]) == 0
    assert (first.run_dir / "model.safetensors").exists()


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch(tmp_path):
    cfg_path = image_config(
        tmp_path,
        train={"epochs": 6},
        early_stopping={"enabled": True, "metric": "val_loss", "patience": 1, "min_delta": 1e9},
    )
    log = EventLog()
    result = fit(load_config(cfg_path), log, output_dir=tmp_path / "runs")
    assert result.status == "early-stopped"
    stopped = log.of(EarlyStopped)
    assert len(stopped) == 1 and stopped[0].epoch == 1 and stopped[0].best_epoch == 0
    assert result.best_epoch == 0


def test_without_a_validation_split_early_stopping_is_off_says_why_and_every_epoch_runs(tmp_path):
    """On by default, early stopping would otherwise watch train_loss, which keeps falling while a model overfits."""
    cfg_path = image_config(
        tmp_path,
        data={"val_fraction": 0.0},
        train={"epochs": 3},
        early_stopping={"enabled": True, "patience": 1, "min_delta": 1e9},  # any epoch after the first: no gain
    )
    log = EventLog()
    result = fit(load_config(cfg_path), log, output_dir=tmp_path / "runs")
    assert result.status == "completed" and not log.of(EarlyStopped)
    assert [e.epoch for e in log.of(EpochMetrics)] == [0, 1, 2]
    notes = [e.text for e in log.of(LogMessage)]
    assert any("early stopping is off" in m and "validation split" in m for m in notes), notes
    assert result.best_epoch == 0  # the best weights (by train_loss) are still the ones kept


def test_an_unknown_early_stopping_metric_names_the_logged_ones(tmp_path, capsys):
    cfg_path = image_config(tmp_path, early_stopping={"enabled": True, "metric": "val_acuracy"})
    assert main(["train", str(cfg_path), "--output", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "val_acuracy" in err and "val_accuracy" in err
