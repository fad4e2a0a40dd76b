"""An LR sweep tells its caller where it is (issue 13, item 5): the engine reports by a plain callback, no Qt."""

from __future__ import annotations

import pytest

from finetune_gui.config import validate_dict
from finetune_gui.core.training.lr_find import find_lr
from finetune_gui.core.training.optim import SweepProgress, lr_sweep
from tests.conftest import make_image_folder


def test_lr_sweep_reports_every_recorded_point_as_it_is_taken():
    heard: list[SweepProgress] = []
    losses = iter([3.0, 2.0, 1.5, 1.0, 0.8, 0.7, 0.6, 0.5, 0.5, 0.5])
    result = lr_sweep(lambda lr: next(losses), num_steps=10, progress=heard.append)
    assert [p.step for p in heard] == list(range(1, 11))
    assert all(p.phase == "sweeping" and p.num_steps == 10 for p in heard)
    assert [p.lr for p in heard] == result.lrs
    assert [p.smoothed for p in heard] == result.losses and [p.loss for p in heard] == result.raw_losses


def test_a_stopped_sweep_has_reported_the_points_it_keeps():
    heard: list[SweepProgress] = []
    result = lr_sweep(lambda lr: 1.0, num_steps=50, should_stop=lambda: len(heard) >= 4, progress=heard.append)
    assert len(heard) == len(result.lrs) == 4


@pytest.mark.usefixtures("one_torch_thread")
def test_find_lr_says_it_is_preparing_before_it_builds_the_model_then_reports_each_step(tmp_path):
    make_image_folder(tmp_path / "images")
    config = validate_dict(
        {
            "task": {"kind": "image-classification"},
            "data": {"path": str(tmp_path / "images"), "image_size": 32},
            "model": {"name": "resnet18", "allow_random_init": True, "freeze": "none"},
            "train": {"batch_size": 4, "device": "cpu"},
        }
    )
    heard: list[SweepProgress] = []
    result = find_lr(config, num_steps=12, progress=heard.append)
    assert heard[0] == SweepProgress("preparing", 12)
    assert [p.step for p in heard[1:]] == list(range(1, len(result.lrs) + 1))
