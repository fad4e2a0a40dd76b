"""Training on several processes from the window: "all N GPUs" where more than one GPU is visible, and a run
under torchrun followed on the Train page like any other, that stops cleanly with nothing left behind."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from finetune_gui.gui.pages.setup import ALL_GPUS
from tests.gui.test_child_run import in_session, set_up_run

pytestmark = pytest.mark.slow


def test_all_gpus_is_offered_where_more_than_one_is_visible_and_sets_the_processes(window):
    window.show_page("setup")
    page = window.pages["setup"]
    page._devices_found(([("cpu", "2 cores"), ("cuda:0", "H200"), ("cuda:1", "H200")], "cuda:0"))
    index = page.device_combo.findData(ALL_GPUS)
    assert index == 1 and page.device_combo.itemText(index).startswith("all 2 GPUs")
    page.device_combo.setCurrentIndex(index)
    page.device_combo.activated.emit(index)
    assert window.state.config.train.device == "cuda" and window.state.processes == 2
    cpu = page.device_combo.findData("cpu")
    page.device_combo.setCurrentIndex(cpu)
    page.device_combo.activated.emit(cpu)
    assert window.state.config.train.device == "cpu" and window.state.processes == 1


def test_one_visible_gpu_gets_no_all_gpus_choice(window):
    page = window.pages["setup"]
    page._devices_found(([("cpu", "2 cores"), ("cuda:0", "H200")], "cuda:0"))
    assert page.device_combo.findData(ALL_GPUS) == -1


def test_a_two_process_run_shows_live_plots_and_stops_with_no_process_left(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_OFFLINE", "1")
    monkeypatch.setenv("FINETUNE_GUI_DIST_TIMEOUT_S", "60")
    set_up_run(window, tmp_path, epochs=40, batch_size=4, per_class=20)
    window.state.set_value("train", "device", "cpu")
    window.state.processes = 2  # what "all 2 GPUs" sets; on this machine the processes share the CPU (gloo)
    page, bridge = window.pages["monitor"], window.bridge
    failed, pids, epochs = [], [], []
    bridge.run_failed.connect(failed.append)
    bridge.epoch.connect(epochs.append)

    def stop_after_two_epochs(event) -> None:
        if len(epochs) == 2 and not pids:
            pids.append(bridge.child_pid)
            qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)

    bridge.epoch.connect(stop_after_two_epochs)
    window.start_training()
    assert bridge.is_training and not page.pause_button.isEnabled()
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=240_000)
    assert failed == [], failed
    assert len(page.plots["loss"].series["train"]) >= 2 and len(page.plots["metric"].series["metric"]) >= 2
    log = page.log_view.toPlainText()
    assert "in 2 processes under torchrun" in log and "distributed: 2 processes (gloo)" in log
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert list((run / "checkpoints").glob("step-*.state.pt")), "rank 0 saved where the run stopped"
    qtbot.waitUntil(lambda: in_session(pids[0]) == [], timeout=5_000)  # torchrun and both ranks are gone
