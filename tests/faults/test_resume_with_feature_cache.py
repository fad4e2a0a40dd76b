"""Case 5 with the feature cache on: a head-only run stopped and resumed (mid-epoch, or before an epoch's
evaluation), also from augmented copies, trains on the same cached batches in the same order as one never
interrupted and ends with bit-identical weights; the resumed run reuses the cache files instead of computing them again."""

from __future__ import annotations

import pytest

from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import RunControl
from tests.faults.helpers import image_config, stop_at_step, weights_equal

NO_AUGMENT = {"random_resized_crop": False, "hflip": 0.0}
AUGMENT = {"random_resized_crop": True, "hflip": 0.5}  # cached as 2 augmented copies (feature_cache_aug_copies)


@pytest.mark.parametrize(
    "freeze,stop,augment",
    [("head-only", 7, NO_AUGMENT), ("head-only", 5, NO_AUGMENT), ("last-n", 7, NO_AUGMENT), ("head-only", 7, AUGMENT)],
    ids=["mid-epoch-2", "before-epoch-1-evaluation", "last-n-mid-epoch-2", "augmented-copies-mid-epoch-2"],
)
def test_a_resumed_run_with_the_cache_equals_an_uninterrupted_one(
    tmp_path, tinynet, images, batches, freeze, stop, augment
):
    config = image_config(
        images,
        model={"freeze": freeze, "unfreeze_last_n": 1},
        augment=augment,
        train={"epochs": 3, "feature_cache": "auto", "feature_cache_aug_copies": 2},
    )
    logs: list[str] = []
    straight = fit(config, stop_at_step(RunControl(), None, logs), output_dir=tmp_path / "straight")
    assert straight.status == "completed" and any("cache: computed 18 train" in line for line in logs)
    assert any("2 augmented copies of each training image" in line for line in logs) == (augment is AUGMENT)
    straight_batches = list(batches)
    batches.clear()

    control, logs = RunControl(), []
    stopped = fit(config, stop_at_step(control, stop, logs), control, output_dir=tmp_path / "interrupted")
    assert stopped.status == "stopped"
    logs.clear()
    resumed = resume(stopped.run_dir, stop_at_step(RunControl(), None, logs))
    assert resumed.status == "completed"
    assert any("cache: reused the train features" in line for line in logs), logs

    assert batches == straight_batches and len(straight_batches) == 15
    assert weights_equal(straight.run_dir / "model.safetensors", resumed.run_dir / "model.safetensors")
    assert resumed.test_metrics == straight.test_metrics
