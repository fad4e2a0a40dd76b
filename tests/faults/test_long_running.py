"""Cases 9 and 10: many runs and long runs in one GUI process.

9. 50 start/stop cycles through the WorkerBridge (10 in the quick suite, 50 and 10 with DataLoader workers slow): threads, open files, tensor memory and RSS return to their
   baseline (taken after one warm-up cycle: torch's thread pool and allocator caches are made once).
10. A long run on tiny data (60 epochs, 300 steps; marked slow): tensor memory is flat and RSS does not grow after warm-up;
    the bridge still sends at most 20 step updates a second and every epoch update, and adding a point to a
    live plot stays cheap however many it holds.
"""

from __future__ import annotations

import gc
import time

import pytest

from tests.faults.helpers import child_pids, image_config, open_fds, rss_bytes, thread_count
from tests.faults.test_out_of_memory import live_tensor_bytes

MB = 2**20


def _cycle(bridge, qtbot, config, output) -> None:
    """Start a run, ask it to stop at once (it stops after its first step and saves), wait until it is over."""
    with qtbot.waitSignal(bridge.training_changed, timeout=60000, check_params_cb=lambda on: not on):
        bridge.start_training(config, output)
        bridge.stop()
    qtbot.waitUntil(lambda: not bridge.busy, timeout=10000)


def _settle(qtbot) -> None:
    """Let deleteLater() and finished threads be collected before measuring."""
    from PySide6.QtCore import QCoreApplication, QEvent

    for _ in range(3):
        qtbot.wait(20)
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()


@pytest.mark.parametrize(
    "cycles,workers",
    [(10, 0), pytest.param(50, 0, marks=pytest.mark.slow), pytest.param(10, 2, marks=pytest.mark.slow)],
)
def test_many_start_stop_cycles_leave_threads_files_and_memory_at_baseline(
    tmp_path, tinynet, images, bridge, qtbot, cycles, workers
):
    config = image_config(images, train={"epochs": 3}, data={"num_workers": workers})
    logs: list[str] = []
    bridge.log.connect(lambda level, text: logs.append(text))
    _cycle(bridge, qtbot, config, tmp_path / "runs")  # warm-up
    _settle(qtbot)
    threads, fds, tensors, rss = thread_count(), open_fds(), live_tensor_bytes(), rss_bytes()

    for _ in range(cycles):
        _cycle(bridge, qtbot, config, tmp_path / "runs")
    _settle(qtbot)

    assert sum(t.startswith("stopped at step 1;") for t in logs) == cycles + 1  # each one really ran and stopped
    assert thread_count() <= threads, f"{thread_count() - threads} more threads after {cycles} runs"
    assert open_fds() <= fds, f"{open_fds() - fds} more open files after {cycles} runs"
    assert live_tensor_bytes() <= tensors, "tensors of finished runs are still alive"  # exactly: measured 0
    grown = (rss_bytes() - rss) / MB
    assert grown < 40, f"RSS grew by {grown:.0f} MB over {cycles} runs"
    assert not child_pids(), "DataLoader worker processes left behind"


@pytest.mark.slow
def test_a_long_run_keeps_memory_flat_after_warm_up_and_updates_throttled(tmp_path, tinynet, images, bridge, qtbot):
    from finetune_gui.gui.widgets.live_plot import LivePlot
    from finetune_gui.gui.worker import STEP_SIGNAL_INTERVAL_S

    epochs = 60
    config = image_config(
        images,
        train={"epochs": epochs, "log_every": 1},
        checkpoint={"keep_last": 1, "every_n_epochs": 10},
        early_stopping={"enabled": False},  # all 60 epochs: the test is about memory over a long run
    )
    plot = LivePlot("loss", "step", "loss", "")
    qtbot.addWidget(plot)
    series = plot.add_series("train")
    samples: list[tuple[int, int, int]] = []  # (epoch, tensor bytes, rss) after each epoch
    steps: list[float] = []
    slot_times: list[float] = []

    def on_step(e):
        t = time.perf_counter()
        series.append(e.step, e.loss)
        slot_times.append(time.perf_counter() - t)
        steps.append(time.monotonic())

    epochs_seen: list[int] = []

    def on_epoch(e):  # measured in the main thread while the run goes on (tensors: the run's own included)
        epochs_seen.append(e.epoch)
        if e.epoch % 5 == 4:  # a full scan of Python's objects takes a while: every 5th epoch
            samples.append((e.epoch, live_tensor_bytes(), rss_bytes()))

    bridge.step.connect(on_step)
    bridge.epoch.connect(on_epoch)
    with qtbot.waitSignal(bridge.run_finished, timeout=600000):
        bridge.start_training(config, tmp_path / "runs")
    qtbot.waitUntil(lambda: not bridge.busy, timeout=10000)

    assert epochs_seen == list(range(epochs))  # every epoch update arrived, in order
    warm = [s for s in samples if s[0] >= 10]
    tensor_growth = max(s[1] for s in warm) - warm[0][1]
    rss_growth = (max(s[2] for s in warm) - min(s[2] for s in warm[:3])) / MB
    assert tensor_growth < MB, f"tensor memory grew by {tensor_growth / MB:.1f} MB after warm-up"
    assert rss_growth < 30, f"RSS grew by {rss_growth:.0f} MB over {epochs - 10} epochs after warm-up"

    duration = steps[-1] - steps[0]
    assert len(steps) <= duration / STEP_SIGNAL_INTERVAL_S + epochs + 2  # throttled (each epoch flushes one)
    assert max(slot_times) < 0.05 and len(series) == len(steps)
