"""A paused run: the time it waits is not training time, so its speed and ETA do not drop after a pause."""

from __future__ import annotations

import threading

from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import RunControl, StepMetrics
from tests.faults.helpers import image_config

PAUSE_S = 1.5


def test_time_spent_paused_counts_in_neither_speed_nor_eta(tmp_path, tinynet, image_folder):
    control, steps = RunControl(), []

    def listener(event):
        if isinstance(event, StepMetrics):
            steps.append(event)
            if event.step == 3:
                control.pause()  # the loop waits after this step until resumed
                threading.Timer(PAUSE_S, control.resume).start()

    config = image_config(image_folder, train={"epochs": 2, "batch_size": 4, "log_every": 1})
    result = fit(config, listener, control, output_dir=tmp_path / "runs")
    assert result.status == "completed"
    before, after = steps[2], steps[3]  # steps 3 and 4: a few ms of training apart, with the pause between
    assert after.samples_per_s > 0.5 * before.samples_per_s, (before.samples_per_s, after.samples_per_s)
    assert after.eta_s < before.eta_s + PAUSE_S / 2, (before.eta_s, after.eta_s)
