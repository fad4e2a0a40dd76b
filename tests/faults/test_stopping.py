"""Case 4: stop during an epoch and during a save — from the CLI (Ctrl+C, a real SIGINT to a child process) and
from the GUI's WorkerBridge. The run returns within 2 s (the steps are tiny), leaves no DataLoader worker
process behind, and its newest checkpoint is the stop point and checks out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from finetune_gui.cli import EXIT_STOPPED
from finetune_gui.core.checkpoints import latest_usable_checkpoint
from finetune_gui.core.runs import RunDir
from tests.faults.helpers import child_pids, image_config, only_run

REPO = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 2.0


def _consistent(run: Path, step: int | None = None) -> int:
    """The run is marked stopped and its newest checkpoint is complete, loads, and is the stop point."""
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped", status
    info, _, state, skipped = latest_usable_checkpoint(RunDir(run))
    assert not skipped, skipped
    assert state["step"] == status["step"] == info.step
    if step is not None:
        assert info.step == step
    return info.step


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# ---------------------------------------------------------------- CLI: SIGINT to a real process


def _cli_child(tmp_path: Path, images: Path, mode: str, workers: int) -> tuple[subprocess.Popen, Path]:
    config = image_config(images, train={"epochs": 3}, data={"num_workers": workers})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.kill_driver", str(path), str(tmp_path / "runs"), mode],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, tmp_path / "runs"


def _wait_for(proc: subprocess.Popen, marker: str, count: int = 1) -> None:
    seen, lines = 0, []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if line.startswith(marker):
            seen += 1
            if seen == count:
                return
    raise AssertionError(f"the child ended before {marker} x{count}: {''.join(lines)[-2000:]}")


def _interrupt(proc: subprocess.Popen) -> tuple[float, float, str]:
    """Send SIGINT; returns (seconds until the command printed its last line, seconds until the process
    was gone, everything it printed after the signal)."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, done = [], None
    for line in proc.stdout:  # type: ignore[union-attr]
        out.append(line)
        if line.startswith("stopped; continue with"):
            done = time.monotonic() - sent
    proc.wait(timeout=60)
    gone = time.monotonic() - sent
    return (done if done is not None else gone), gone, "".join(out)


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_ctrl_c_during_an_epoch_stops_within_2s_saves_and_leaves_no_worker_process(tmp_path, images, workers):
    proc, out = _cli_child(tmp_path, images, "steps:0.05", workers)
    _wait_for(proc, "STEP", 7)  # the 2nd batch of epoch 2
    loaders = child_pids(proc.pid)
    assert len(loaders) == workers  # the DataLoader's worker processes, while the epoch runs
    took, gone, err = _interrupt(proc)
    assert proc.returncode == EXIT_STOPPED, err
    assert "stopping after this step" in err and "finetune-gui resume" in err
    assert took < STOP_WITHIN_S, f"took {took:.2f} s to stop"
    assert gone < 15, f"the process took {gone:.1f} s to exit"  # interpreter teardown (torch): ~2 s under load
    assert not [p for p in loaders if _alive(p)], "DataLoader workers outlived the run"
    step = _consistent(only_run(out))
    assert 7 <= step <= 9  # the step that was running when Ctrl+C came (or the next, under load)


@pytest.mark.slow  # a child process; the GUI test below stops during a save in the quick suite
def test_ctrl_c_during_a_save_lets_the_save_finish_then_stops_at_the_next_step(tmp_path, images):
    proc, out = _cli_child(tmp_path, images, "slow-written:step-00000005.state.pt", 0)
    _wait_for(proc, "PAUSED")  # the step-5 save is half done (and takes 0.5 s more)
    took, _, err = _interrupt(proc)
    assert proc.returncode == EXIT_STOPPED, err
    assert took < STOP_WITHIN_S + 0.5, f"took {took:.2f} s to stop"
    run = only_run(out)
    step = _consistent(run)
    assert step in (5, 6)  # the interrupted save completed (or one more step ran before the stop was seen)
    latest_usable_checkpoint(RunDir(run))  # and step 5's checkpoint is whole


# ---------------------------------------------------------------- GUI: WorkerBridge.stop()


def _pump_until(qapp, condition, timeout_s: float, what: str, failures: list) -> None:
    """Process events until `condition()`; fails with the run's own error if it ended instead."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert not failures, f"the run failed: {failures[0].error_type}: {failures[0].message}"
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        qapp.processEvents()
        time.sleep(0.005)


def _training_ended(bridge, ended: list) -> None:
    bridge.training_changed.connect(lambda on: None if on else ended.append(time.monotonic()))


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_gui_stop_during_an_epoch_returns_within_2s_and_leaves_no_worker_process(
    tmp_path, tinynet, images, bridge, qapp, monkeypatch, workers
):
    from finetune_gui.core.training import engine

    real_forward = engine.forward_batch

    def slow_forward(p, batch, *, train):  # 50 ms steps, so the stop lands in the middle of epoch 2
        if train:
            time.sleep(0.05)
        return real_forward(p, batch, train=train)

    monkeypatch.setattr(engine, "forward_batch", slow_forward)
    config = image_config(images, train={"epochs": 3}, data={"num_workers": workers})
    steps: list[int] = []
    bridge.step.connect(lambda e: steps.append(e.step))
    before = set(child_pids())
    logs: list[str] = []
    bridge.log.connect(lambda level, text: logs.append(text))
    failures, ended = [], []
    bridge.run_failed.connect(failures.append)
    _training_ended(bridge, ended)
    bridge.start_training(config, tmp_path / "runs")
    _pump_until(qapp, lambda: bool(steps) and steps[-1] >= 7, 120, "step 7", failures)
    loaders = set(child_pids()) - before
    assert len(loaders) == workers
    asked = time.monotonic()
    bridge.stop()
    _pump_until(qapp, lambda: bool(ended), 60, "the training thread to end", failures)
    took = ended[0] - asked  # the training thread has ended: the bridge is ready for the next run
    assert any(t.startswith("stopped at step") for t in logs), logs
    assert took < STOP_WITHIN_S, f"took {took:.2f} s to stop"
    assert not [p for p in loaders if _alive(p)], "DataLoader workers outlived the run"
    assert 7 <= _consistent(only_run(tmp_path / "runs")) <= 9  # mid-epoch 2, not at the epoch's end (10)


def test_gui_stop_during_a_save_lets_it_finish_and_leaves_a_consistent_checkpoint(
    tmp_path, tinynet, images, bridge, qapp, monkeypatch
):
    from finetune_gui.core import checkpoints

    saving, release = threading.Event(), threading.Event()
    real_write_temp = checkpoints.write_temp

    def slow_write_temp(path, write):
        tmp = real_write_temp(path, write)
        if Path(path).name == "step-00000005.state.pt":
            saving.set()
            release.wait(10)  # the save is held half done until the stop has been asked for
        return tmp

    monkeypatch.setattr(checkpoints, "write_temp", slow_write_temp)
    config = image_config(images, train={"epochs": 3})
    failures, ended = [], []
    bridge.run_failed.connect(failures.append)
    _training_ended(bridge, ended)
    bridge.start_training(config, tmp_path / "runs")
    _pump_until(qapp, saving.is_set, 120, "the step-5 save", failures)
    asked = time.monotonic()
    bridge.stop()
    release.set()
    _pump_until(qapp, lambda: bool(ended), 60, "the training thread to end", failures)
    took = ended[0] - asked
    assert took < STOP_WITHIN_S, f"took {took:.2f} s to stop"
    assert _consistent(only_run(tmp_path / "runs")) in (5, 6)
