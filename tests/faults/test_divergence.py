"""Case 8: NaN/Inf loss, from a huge learning rate, a poisoned batch or a poisoned gradient. Training stops at
the step where it happens, the run is marked diverged with a suggestion, and the checkpoints left behind are
the last finite ones: nothing non-finite is ever saved, and none of the earlier checkpoints is deleted."""

from __future__ import annotations

import json
import math

import pytest
import torch

from finetune_gui.cli import EXIT_DIVERGED, main
from finetune_gui.core.checkpoints import list_checkpoints, load_checkpoint
from finetune_gui.core.data.images import ImageDataset
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training import engine
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import CheckpointSaved, EventLog, RunFailed, StepMetrics
from tests.faults.helpers import image_config

SUGGESTION = ("3-10x lower", "train.grad_clip")
HUGE_LR = {"epochs": 4, "lr": 10.0, "optimizer": "sgd", "weight_decay": 0.0, "schedule": "constant"}
# The huge-LR runs follow a trajectory whose training loss turns non-finite before the validation loss does,
# that of images decoded at every read; with decoded-once crops the validation loss overflows first, which is
# the case of test_a_validation_loss_that_is_never_finite_is_divergence_not_a_config_error.
EVERY_READ = {"decode_cache": "off"}


def _diverged(result, log) -> RunFailed:
    assert result.status == "failed"
    (failed,) = log.of(RunFailed)
    assert failed.error_type == "Diverged", failed
    assert all(s in failed.message for s in SUGGESTION), failed.message
    status = json.loads((result.run_dir / "status.json").read_text())
    assert status["state"] == "diverged" and status["error"] == "Diverged"
    assert not (result.run_dir / "model.safetensors").exists()
    return failed


def _all_checkpoints_finite(run_dir) -> list[int]:
    """Steps of the step checkpoints; each one (and best) loads and holds only finite numbers."""
    run = RunDir(run_dir)
    steps = []
    infos = list_checkpoints(run)
    best = run.checkpoints / "best.safetensors"
    if best.exists():
        from finetune_gui.core.checkpoints import CheckpointInfo

        infos.append(CheckpointInfo(best, run.checkpoints / "best.state.pt", -1))
    for info in infos:
        weights, _ = load_checkpoint(info)
        for name, t in weights.items():
            assert not t.is_floating_point() or bool(torch.isfinite(t).all()), (info.weights.name, name)
        if info.step >= 0:
            steps.append(info.step)
    return steps


def _failing_step(message: str) -> int:
    return (
        int(message.split(" at step ")[1].split()[0])
        if " at step " in message
        else int(message.split(" by step ")[1].split()[0])
    )


def test_a_huge_learning_rate_stops_at_the_first_non_finite_loss_and_keeps_the_last_finite_checkpoint(
    tmp_path, tinynet, images
):
    config = image_config(
        images,
        train=HUGE_LR,
        checkpoint={"keep_last": 5},
        data=EVERY_READ,
    )
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    failed = _diverged(result, log)
    bad_step = _failing_step(failed.message)
    reported = [e.step for e in log.of(StepMetrics)]
    assert reported == list(range(1, bad_step)), "it went on past the non-finite loss, or stopped too early"
    assert all(math.isfinite(e.loss) for e in log.of(StepMetrics))
    steps = _all_checkpoints_finite(result.run_dir)
    assert steps and max(steps) < bad_step
    assert steps == [e.step for e in log.of(CheckpointSaved) if not e.is_best]  # rotation deleted nothing
    assert f"step-{max(steps):08d}.safetensors" in failed.message  # the message names the one to go back to


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_a_poisoned_batch_in_epoch_two_stops_that_step_and_leaves_epoch_one_checkpoint(
    tmp_path, tinynet, images, monkeypatch, poison
):
    calls = {"n": 0}
    real_getitem = ImageDataset.__getitem__
    train_images = 18  # 36 images, a quarter each to val and test; 5 steps of batch 4 per epoch

    def poisoned(self, i):
        x, y = real_getitem(self, i)
        if self.transform is not None and len(self) == train_images:
            calls["n"] += 1
            if calls["n"] == train_images + 7:  # epoch 2, its second batch (step 7)
                x = torch.full_like(x, poison)
        return x, y

    monkeypatch.setattr(ImageDataset, "__getitem__", poisoned)
    config = image_config(images, train={"epochs": 3})
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    failed = _diverged(result, log)
    assert _failing_step(failed.message) == 7
    assert [e.step for e in log.of(StepMetrics)] == list(range(1, 7))
    assert _all_checkpoints_finite(result.run_dir) == [5]
    assert "step-00000005.safetensors" in failed.message


def test_weights_made_non_finite_by_a_finite_loss_are_never_saved(tmp_path, tinynet, images, monkeypatch):
    """A NaN gradient (a finite loss can have one) on the last step of epoch 2 reaches the weights; the
    epoch-end save must refuse them and leave epoch 1's checkpoint as the last one."""
    real_step = engine.optimizer_step
    calls = {"n": 0}

    def poisoned_step(optimizer, scaler, params, clip, measure):
        calls["n"] += 1
        if calls["n"] == 10:
            for q in params:
                if q.grad is not None:
                    q.grad.fill_(float("nan"))
        return real_step(optimizer, scaler, params, clip, measure)

    monkeypatch.setattr(engine, "optimizer_step", poisoned_step)
    config = image_config(images, train={"epochs": 3})
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    failed = _diverged(result, log)
    assert "weights became NaN or infinite by step 10" in failed.message
    assert _all_checkpoints_finite(result.run_dir) == [5]
    assert [e.step for e in log.of(CheckpointSaved)] == [5, 5]  # epoch 1's best and step checkpoints only


def test_cli_exits_5_with_the_suggestion(tmp_path, tinynet, images, capsys):
    config = image_config(images, train=HUGE_LR, data=EVERY_READ)
    path = tmp_path / "diverge.toml"
    path.write_text(config.to_toml())
    assert main(["train", str(path), "--output", str(tmp_path / "runs"), "--quiet"]) == EXIT_DIVERGED
    err = capsys.readouterr().err
    assert "error: the loss became" in err and all(s in err for s in SUGGESTION)
    assert "Traceback" not in err


def test_a_validation_loss_that_is_never_finite_is_divergence_not_a_config_error(
    tmp_path, tinynet, images, monkeypatch
):
    real_getitem = ImageDataset.__getitem__
    val_images = 9  # 36 images, a quarter each to val and test

    def poisoned(self, i):
        x, y = real_getitem(self, i)
        return (torch.full_like(x, float("inf")), y) if len(self) == val_images else (x, y)

    monkeypatch.setattr(ImageDataset, "__getitem__", poisoned)
    log = EventLog()
    result = fit(image_config(images, train={"epochs": 2}), log, output_dir=tmp_path / "runs")
    failed = _diverged(result, log)
    assert "validation loss was not finite" in failed.message and "early_stopping.metric" not in failed.message
