"""The worker bridge: the engine runs off the main thread and reports through throttled Qt signals."""

from __future__ import annotations

import time

from finetune_gui.config import validate_dict
from tests.conftest import make_image_folder


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


def test_a_run_reports_start_epochs_and_finish_as_signals(qtbot, bridge, tmp_path):
    seen = {"epochs": [], "steps": [], "started": []}
    bridge.run_started.connect(seen["started"].append)
    bridge.epoch.connect(seen["epochs"].append)
    bridge.step.connect(lambda e: seen["steps"].append((time.monotonic(), e)))
    with qtbot.waitSignal(bridge.run_finished, timeout=120000) as finished:
        bridge.start_training(tiny_config(tmp_path))
        assert bridge.is_training
    assert finished.args[0].status == "completed"
    assert len(seen["started"]) == 1
    assert [e.epoch for e in seen["epochs"]] == [0, 1]  # epoch events always arrive
    assert seen["steps"] and seen["steps"][-1][1].step == seen["steps"][-1][1].total_steps  # the last step lands
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=10000)


def test_step_events_are_throttled_and_the_newest_lands_before_the_epoch_summary(qtbot):
    from finetune_gui.core.training.events import EpochMetrics, StepMetrics
    from finetune_gui.gui.worker import _TrainingWorker

    worker = _TrainingWorker(lambda listener, control: None, None)
    emitted = []
    worker.event.connect(emitted.append)
    burst = [StepMetrics(0, i, 100, 1.0, 0.1, 1.0, 10.0, 1.0) for i in range(1, 101)]
    start = time.monotonic()
    for event in burst:
        worker._on_event(event)
    elapsed = time.monotonic() - start
    steps = [e for e in emitted if isinstance(e, StepMetrics)]
    assert len(steps) <= 1 + elapsed / 0.05  # at most 20 per second
    worker._on_event(EpochMetrics(0, 100, {"val_loss": 1.0}, 0.1, 1.0))
    assert isinstance(emitted[-1], EpochMetrics)
    assert emitted[-2].step == 100  # the newest step was held back, then delivered first


def test_stop_ends_the_run_with_a_checkpoint(qtbot, bridge, tmp_path):
    finished = []
    bridge.run_finished.connect(finished.append)
    bridge.step.connect(lambda e: bridge.stop())
    bridge.start_training(tiny_config(tmp_path, epochs=5))
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=120000)
    assert finished == []  # a stopped run does not "finish"
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    assert list((runs[0] / "checkpoints").glob("step-*.state.pt"))
    assert '"stopped"' in (runs[0] / "status.json").read_text()


def test_an_engine_failure_arrives_as_run_failed(qtbot, bridge, tmp_path):
    config = tiny_config(tmp_path)
    config.data.path = str(tmp_path / "missing")
    with qtbot.waitSignal(bridge.run_failed, timeout=60000) as failed:
        bridge.start_training(config)
    assert failed.args[0].error_type == "DataError"
    assert "missing" in failed.args[0].message
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=10000)


def test_run_task_returns_results_and_errors_in_the_main_thread(qtbot, bridge):
    from PySide6.QtCore import QThread

    results, errors = [], []

    def ok(x):
        return x * 2, QThread.currentThread().objectName()

    def bad():
        raise ValueError("nope")

    main = QThread.currentThread()
    bridge.run_task(ok, 21, on_result=lambda r: results.append((r, QThread.currentThread() is main)))
    bridge.run_task(bad, on_error=lambda *e: errors.append((e, QThread.currentThread() is main)))
    qtbot.waitUntil(lambda: bool(results and errors), timeout=10000)
    assert results[0] == ((42, "finetune-task-ok"), True)  # computed in the worker, delivered in the main thread
    (error_type, message, details), in_main = errors[0]
    assert error_type == "ValueError" and message == "nope" and "Traceback" in details
    assert in_main


def test_a_result_for_a_widget_deleted_meanwhile_is_dropped(qtbot, bridge):
    import threading
    from functools import partial

    import shiboken6
    from PySide6.QtWidgets import QLabel, QWidget

    delivered: list[str] = []

    class Page(QWidget):
        def show_text(self, label: QLabel, text: str) -> None:
            delivered.append(text)
            label.setText(text)

    page, closed_page = Page(), Page()
    label, old_label = QLabel(page), QLabel(page)
    qtbot.addWidget(page)
    release = threading.Event()

    def slow(text):
        release.wait(10)
        return text

    bridge.run_task(slow, "for a deleted label", on_result=partial(page.show_text, old_label))
    bridge.run_task(slow, "for a closed page", on_result=partial(closed_page.show_text, label))
    bridge.run_task(slow, "shown", on_result=partial(page.show_text, label))
    shiboken6.delete(old_label)  # the page refilled its list while the tasks ran
    shiboken6.delete(closed_page)
    release.set()
    qtbot.waitUntil(lambda: not bridge._tasks, timeout=10000)
    assert delivered == ["shown"] and label.text() == "shown"


def test_shutdown_waits_for_a_task_without_needing_the_event_loop(bridge):
    """Closing the window blocks the main thread in shutdown(); a task that finishes meanwhile must end its thread."""
    started = time.perf_counter()
    bridge.run_task(time.sleep, 0.2)
    assert bridge.shutdown(timeout_ms=10000)
    assert time.perf_counter() - started < 5


def test_after_shutdown_a_late_result_starts_no_work_that_would_outlive_the_window(qtbot, bridge):
    """A result delivered while the window closes (a run's evaluation, read just before) asks for more work;
    it must not start, or its thread would still run when the app exits."""
    ran = []
    bridge.shutdown(timeout_ms=10000)
    assert bridge.run_task(ran.append, "late", on_result=ran.append) is None
    qtbot.wait(200)
    assert ran == [] and not bridge._tasks
