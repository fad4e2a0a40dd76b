"""The Train page: live curves during a real tiny run, stop and resume by its buttons, and old runs re-plotted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from finetune_gui.config import TaskKind, validate_dict
from finetune_gui.core.training.engine import fit
from finetune_gui.gui.pages.monitor import MonitorPage, format_duration
from finetune_gui.gui.panels.training_plots import task_metric
from tests.conftest import make_image_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(tmp_path, **train):
    make_image_folder(tmp_path / "images")
    return validate_dict(
        {
            "task": {"kind": "image-classification"},
            "data": {"path": str(tmp_path / "images"), "image_size": 32, "val_fraction": 0.25, "test_fraction": 0.25},
            "model": {"name": "resnet18", "allow_random_init": True, "freeze": "none"},
            "train": {"epochs": 2, "batch_size": 4, "log_every": 1, **train},
            "checkpoint": {"output_dir": str(tmp_path / "runs")},
        }
    )


@pytest.fixture
def page(qtbot, state, bridge):
    p = MonitorPage(state, bridge)
    p.start_requested.connect(p.start)  # as the window does, after it has looked at the data
    p.baseline_requested.connect(p.start_baseline)
    qtbot.addWidget(p)
    p.resize(1110, 740)
    yield p
    qtbot.waitUntil(lambda: not bridge.busy, timeout=60000)  # tasks end before the bridge shuts down


def only_run(tmp_path):
    [run] = list((tmp_path / "runs").iterdir())
    return run


def test_a_run_started_by_the_button_fills_the_plots_and_ends_completed(qtbot, page, state, bridge, tmp_path):
    state.set_config(tiny_config(tmp_path))
    assert not page.stop_button.isEnabled() and page.start_button.isEnabled()
    with qtbot.waitSignal(bridge.run_finished, timeout=120000) as finished:
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
        assert page.stop_button.isEnabled() and page.pause_button.isEnabled() and not page.start_button.isEnabled()
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=10000)
    assert finished.args[0].status == "completed"

    loss = page.plots["loss"].series
    assert len(loss["train"]) >= 2 and (loss["train"].y > 0).all()
    assert list(loss["validation"].x) == [5.0, 10.0]  # 18 training images at batch 4: 5 steps per epoch
    assert list(page.plots["metric"].series["metric"].x) == [1.0, 2.0]
    assert page.plots["metric"].plot.getAxis("left").labelText == "val_accuracy"
    assert len(page.plots["lr"].series["lr"]) >= 2 and len(page.plots["grad"].series["grad norm"]) >= 1
    assert all(p.showing_plot for p in page.plots.values())

    run = only_run(tmp_path)
    assert state.run_dir == run  # the page told the rest of the app which run this is
    assert "Run completed" in page.status_label.text() and "test_accuracy" in page.status_label.text()
    assert page.progress.value() == 1000
    assert page.step_label.text() == "Step 10/10"
    log = page.log_view.toPlainText()
    assert "run started in" in log and "epoch 2:" in log and "best checkpoint saved" in log
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()
    assert not page.resume_run_button.isEnabled()  # a completed run has nothing to resume


def test_stop_by_the_button_ends_stopped_and_resume_run_finishes_it(qtbot, page, state, bridge, tmp_path):
    state.set_config(tiny_config(tmp_path, epochs=2))
    stopped = []

    def stop_once(event):
        if not stopped:
            stopped.append(event.step)
            qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)

    bridge.step.connect(stop_once)
    qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=120000)
    bridge.step.disconnect(stop_once)
    assert "stopped" in page.status_label.text().lower()
    run = only_run(tmp_path)
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert page.resume_run_button.isEnabled() and page.pause_button.text() == "Pause"

    with qtbot.waitSignal(bridge.run_finished, timeout=120000) as finished:
        qtbot.mouseClick(page.resume_run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=10000)
    assert finished.args[0].status == "completed" and finished.args[0].run_dir == str(run)
    assert "Run completed" in page.status_label.text()
    assert list(page.plots["metric"].series["metric"].x) == [1.0, 2.0]  # each epoch once, none doubled
    assert "resumed at step" in page.log_view.toPlainText()


def test_opening_a_finished_run_replots_its_curves(qtbot, page, state, bridge, tmp_path):
    config = tiny_config(tmp_path)
    run = fit(config, output_dir=tmp_path / "runs").run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in rows if "split" not in r]

    state.set_run_dir(run)
    qtbot.waitUntil(
        lambda: len(page.plots.get("metric", None).series["metric"]) == 2 if page.plots else False, timeout=20000
    )
    val = page.plots["loss"].series["validation"]
    assert list(val.x) == [r["step"] for r in epochs]
    assert list(val.y) == pytest.approx([r["val_loss"] for r in epochs])
    assert list(page.plots["metric"].series["metric"].y) == pytest.approx([r["val_accuracy"] for r in epochs])
    steps = [json.loads(line) for line in (run / "steps.jsonl").read_text().splitlines()]
    assert list(page.plots["loss"].series["train"].x) == [r["step"] for r in steps] == list(range(1, 11))
    assert list(page.plots["lr"].series["lr"].y) == pytest.approx([r["lr"] for r in steps])
    assert list(page.plots["grad"].series["grad norm"].y) == pytest.approx([r["grad_norm"] for r in steps])
    assert "completed" in page.status_label.text() and "test_accuracy" in page.status_label.text()
    assert "restored the best weights" in page.log_view.toPlainText()  # the run's log.txt
    assert not page.resume_run_button.isEnabled()


def test_helpers_pick_the_task_metric_and_format_times():
    assert task_metric({"train_loss": 1, "val_loss": 1, "val_accuracy": 0.5, "val_f1_macro": 0.4}) == "val_accuracy"
    assert task_metric({"val_loss": 1, "val_mae": 0.2, "val_r2": 0.1}) == "val_mae"
    assert task_metric({"train_loss": 1}) is None
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05"
    assert format_duration(float("nan")) == "–"


def test_a_run_folder_that_is_gone_is_said_on_the_page_without_a_dialog(qtbot, page, state, tmp_path):
    with qtbot.assertNotEmitted(page.error, wait=500):
        state.set_run_dir(tmp_path / "runs" / "moved-away")
        qtbot.waitUntil(lambda: "Could not read the run" in page.status_label.text(), timeout=10000)
    assert "gone (moved or deleted)" in page.status_label.text()


def test_quick_baseline_trains_a_linear_probe_as_a_run_and_says_the_most_common_class_beside_it(
    qtbot, page, state, bridge, tmp_path, monkeypatch
):
    from finetune_gui.core.features import baseline

    monkeypatch.setattr(baseline, "PROBE_PATIENCE", 1)  # a probe usually ends early-stopped: it counts as done
    config = tiny_config(tmp_path)
    config.early_stopping.min_delta = 10.0  # no epoch counts as better: it stops after the second
    state.set_config(config)
    assert page.baseline_button.isEnabled()
    with qtbot.waitSignal(bridge.run_finished, timeout=120000) as finished:
        qtbot.mouseClick(page.baseline_button, Qt.MouseButton.LeftButton)
    run = Path(finished.args[0].run_dir)
    assert finished.args[0].status == "early-stopped"
    qtbot.waitUntil(lambda: "always answering" in page.log_view.toPlainText(), timeout=10000)
    assert "baseline" in run.name and (run / "baseline.json").is_file()
    assert "feature cache: on" in page.log_view.toPlainText()

    state.set_value("task", "kind", TaskKind.CAUSAL_LM)  # a language model has no classes to probe
    assert not page.baseline_button.isEnabled()
