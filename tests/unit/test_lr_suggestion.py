"""An LR finder's suggestion speaks for the setup it swept (core.plan.sweep_key): the data, the model, its
freezing, augmentation, batch and optimiser; not the LR, the length, the schedule or the run's name."""

from __future__ import annotations

import pytest

from finetune_gui.config import validate_dict
from finetune_gui.core.plan import sweep_key

BASE = {"data": {"path": "/data/images"}, "model": {"name": "resnet18"}, "train": {"lr": 1e-3, "batch_size": 32}}


def key(**sections) -> str:
    merged = {k: dict(v) for k, v in BASE.items()}
    for section, values in sections.items():
        merged.setdefault(section, {}).update(values)
    return sweep_key(validate_dict(merged))


@pytest.mark.parametrize(
    "change",
    [{"train": {"lr": 0.1}}, {"train": {"epochs": 40}}, {"train": {"schedule": "constant"}},
     {"early_stopping": {"patience": 9}}, {"checkpoint": {"run_name": "again"}}, {"logging": {"tensorboard": True}}],
)  # fmt: skip
def test_what_the_sweep_did_not_measure_keeps_the_suggestion(change):
    assert key(**change) == key()


@pytest.mark.parametrize(
    "change",
    [{"train": {"batch_size": 8}}, {"train": {"optimizer": "sgd"}}, {"model": {"name": "resnet34"}},
     {"model": {"freeze": "none"}}, {"data": {"path": "/data/other"}}, {"data": {"image_size": 64}},
     {"augment": {"hflip": 0.0}}],
)  # fmt: skip
def test_a_change_the_sweep_depends_on_drops_the_suggestion(change):
    assert key(**change) != key()
