"""The engine records every reported step in the run folder (issue 13, item 8): a stopped and resumed run ends
with each step once, in order, as its listeners heard them."""

from __future__ import annotations

from finetune_gui.config import load_config
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EventLog, RunControl, StepMetrics
from tests.integration.test_cli_train import image_config


def test_a_stopped_and_resumed_run_records_each_step_once(tmp_path):
    config = load_config(image_config(tmp_path, train={"epochs": 2, "batch_size": 4, "log_every": 1}))
    control, heard = RunControl(), []

    def stop_at_step_7(event):
        if isinstance(event, StepMetrics):
            heard.append(event)
            if event.step == 7:
                control.stop()

    first = fit(config, stop_at_step_7, control, output_dir=tmp_path / "runs")
    assert first.status == "stopped"
    log = EventLog()
    assert resume(first.run_dir, log).status == "completed"

    rows = RunDir(first.run_dir).read_steps()
    redone = log.of(StepMetrics)
    start = redone[0].step  # the checkpoint was at the end of epoch 1 or at the stop
    expected = [e for e in heard if e.step < start] + redone
    assert [r["step"] for r in rows] == [e.step for e in expected] == list(range(1, 11))
    assert [r["loss"] for r in rows] == [e.loss for e in expected]
    assert [r["lr"] for r in rows] == [e.lr for e in expected]
