"""What the GUI previews before a run (core.plan) is what the engine then does: the same split sizes, the same
steps per epoch and the same total, counted by a hook on the real loop."""

from __future__ import annotations

import pytest

from finetune_gui.core import plan
from finetune_gui.core.data import scan_data
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.hooks import TrainingHook
from finetune_gui.core.training.prepare import prepare
from tests.conftest import make_image_folder
from tests.faults.helpers import image_config


class StepCounter(TrainingHook):
    def __init__(self):
        self.steps_per_epoch: dict[int, int] = {}

    def on_step_end(self, trainer, step):
        self.steps_per_epoch[step.epoch] = self.steps_per_epoch.get(step.epoch, 0) + 1


def folder_with_splits(root):
    """train/ with 7 images per class (21), test/ with 3 per class, no val/: val is held out of train."""
    make_image_folder(root / "train", per_class=7)
    make_image_folder(root / "test", per_class=3)
    return root


CASES = {
    "random split, last batch of 2 kept": ({}, {"batch_size": 4}),
    "a last batch of one sample is dropped": ({}, {"batch_size": 17}),
    "gradient accumulation": ({}, {"batch_size": 4, "grad_accum": 2, "epochs": 3}),
    "max_steps caps the run": ({}, {"batch_size": 4, "epochs": 3, "max_steps": 7}),
    "own train/test folders, val held out per class": (
        {"val_fraction": 0.1, "test_fraction": 0.0},
        {"batch_size": 5},
    ),
    "max_samples": ({"max_samples": 30, "val_fraction": 0.2, "test_fraction": 0.2}, {"batch_size": 3}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_planned_steps_are_the_steps_the_engine_runs(case, tmp_path, tinynet):
    data, train = CASES[case]
    images = folder_with_splits(tmp_path / "split") if "folders" in case else make_image_folder(tmp_path / "images")
    config = image_config(
        images,
        data=data,
        train={"epochs": 2, "log_every": 100, **train},
        augment={"random_resized_crop": False, "hflip": 0.0},
        early_stopping={"enabled": False},
    )
    scan = scan_data(config)

    split = plan.plan_splits(config, scan)
    prepared = prepare(config)
    real = {"train": len(prepared.data.train), "val": len(prepared.data.val), "test": len(prepared.data.test)}
    if split.exact:
        assert split.sizes == real
    else:  # a subsample by class (max_samples) rounds per class
        assert case == "max_samples"
        assert all(abs(split.sizes[k] - real[k]) <= len(scan.labels) for k in real)

    per_epoch, total, text = plan.planned_steps(config, scan)
    counter = StepCounter()
    result = fit(config, output_dir=tmp_path / "runs", hooks=[counter])
    assert result.status == "completed"
    assert sum(counter.steps_per_epoch.values()) == total, text
    assert counter.steps_per_epoch[0] == per_epoch, text
    assert (per_epoch, total) == (prepared.steps_per_epoch, prepared.total_steps)


def test_held_out_val_follows_each_class_not_the_whole_split(tmp_path):
    """21 training images in 3 classes of 7, val 10%: one per class (3), where 10% of 21 would round to 2."""
    images = folder_with_splits(tmp_path / "split")
    config = image_config(images, data={"val_fraction": 0.1, "test_fraction": 0.0})
    sizes = plan.plan_splits(config, scan_data(config)).sizes
    assert sizes == {"train": 18, "val": 3, "test": 9}


def test_the_step_explanation_counts_in_plain_words(tmp_path):
    config = image_config(make_image_folder(tmp_path / "images"), train={"batch_size": 17, "epochs": 1})
    _, _, text = plan.planned_steps(config, scan_data(config))
    assert text.startswith("1 step per epoch × 1 epoch = 1 step; from 18 training samples")
