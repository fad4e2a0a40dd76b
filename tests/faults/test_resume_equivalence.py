"""Case 5: a run that is stopped and resumed — mid-epoch, at an epoch's end before its evaluation, or twice —
ends with bit-identical weights to one never interrupted, on the CPU, with num_workers 0 and 2; and it trains
on the same batches in the same order (every batch's bytes are compared, with augmentation applied)."""

from __future__ import annotations

import pytest

from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import RunControl, StepMetrics
from tests.faults.helpers import image_config, weights_equal


def _stop_at(control: RunControl, steps: set[int]):
    def listener(event):
        if isinstance(event, StepMetrics) and event.step in steps:
            control.stop()

    return listener


def _interrupted(config, tmp_path, stops: list[int], batches: list[str]):
    """Train, stopping after each step in `stops`, resuming each time; returns the final run folder."""
    control = RunControl()
    result = fit(config, _stop_at(control, {stops[0]}), control, output_dir=tmp_path / "interrupted")
    assert result.status == "stopped"
    for nxt in stops[1:]:
        control = RunControl()
        result = resume(result.run_dir, _stop_at(control, {nxt}), control)
        assert result.status == "stopped"
    result = resume(result.run_dir)
    assert result.status == "completed"
    return result.run_dir


CASES = [
    # (num_workers, steps to stop after); 5 optimiser steps per epoch (18 images, batch 4, 3 epochs)
    (0, [7]),  # mid-epoch 2
    (0, [5]),  # the last step of epoch 1, before its evaluation
    (0, [3, 12]),  # twice, in different epochs
    (2, [7]),
    pytest.param(2, [5], marks=pytest.mark.slow),
    pytest.param(2, [3, 12], marks=pytest.mark.slow),
]


@pytest.mark.parametrize(
    "workers,stops",
    CASES,
    ids=[
        f"workers{c[0]}-stop{c[1]}" if isinstance(c, tuple) else f"workers{c.values[0]}-stop{c.values[1]}"
        for c in CASES
    ],
)
def test_stopped_and_resumed_equals_uninterrupted_bit_for_bit_with_the_same_batch_order(
    tmp_path, tinynet, images, batches, workers, stops
):
    config = image_config(
        images,
        train={"epochs": 3},
        data={"num_workers": workers},
        augment={"random_resized_crop": True, "hflip": 0.5, "color_jitter": 0.3},
    )
    straight = fit(config, None, output_dir=tmp_path / "straight")
    assert straight.status == "completed"
    straight_batches = list(batches)
    batches.clear()

    run_dir = _interrupted(config, tmp_path, stops, batches)
    # the stop lands after the step that asked for it: no batch is trained twice or skipped
    assert batches == straight_batches
    assert len(set(straight_batches)) == len(straight_batches) == 15  # distinct batches, augmentation varies
    assert weights_equal(straight.run_dir / "model.safetensors", run_dir / "model.safetensors")
    metrics = [(r["epoch"], r.get("val_loss")) for r in _rows(straight.run_dir)]
    assert [(r["epoch"], r.get("val_loss")) for r in _rows(run_dir)] == metrics  # no epoch logged twice


def _rows(run_dir):
    from finetune_gui.core.runs import RunDir

    return RunDir(run_dir).read_metrics()
