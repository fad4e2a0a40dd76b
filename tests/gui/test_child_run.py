"""Training in a separate process: the child's events reach the Train page as a thread's do; Stop ends it with a
checkpoint that resumes; a child that dies or lingers becomes a clear failure; no process is ever left behind."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from finetune_gui import cli
from finetune_gui.core.training.events import RunFailed, StepMetrics
from finetune_gui.gui import child_run
from finetune_gui.gui.child_run import NO_PAUSE_IN_CHILD, ChildRun, child_command, training_child
from tests.conftest import make_image_folder

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux /proc")


def in_session(sid: int) -> list[int]:
    """Live processes whose process group or session is `sid` (a child started in a session of its own)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp, session = fields[0], int(fields[2]), int(fields[3])
        if state != "Z" and sid in (pgrp, session):
            found.append(int(entry))
    return found


def running(marker: str) -> list[int]:
    """Live processes whose command line holds `marker` (whatever their group)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                found += [int(entry)] if state != "Z" else []
        except OSError:
            continue
    return found


def wait_until_none_left(qtbot, sid: int) -> None:
    """Every process of the child's session is gone (a SIGKILL takes a moment to land)."""
    qtbot.waitUntil(lambda: in_session(sid) == [], timeout=5_000)


@pytest.fixture(autouse=True)
def small_child(monkeypatch):
    """The child trains offline with one thread (two contend on this 2-core machine)."""
    monkeypatch.setenv("FINETUNE_GUI_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def set_up_run(window, tmp_path, epochs: int, batch_size: int, per_class: int = 12) -> None:
    data = make_image_folder(tmp_path / "shapes", per_class=per_class, size=32)
    s = window.state
    s.set_value("checkpoint", "output_dir", str(tmp_path / "runs"))
    s.set_value("data", "path", str(data))
    s.set_value("data", "image_size", 32)
    s.set_value("data", "val_fraction", 0.25)
    s.set_value("data", "test_fraction", 0.25)
    s.set_value("model", "pretrained", False)
    s.set_value("train", "epochs", epochs)
    s.set_value("train", "batch_size", batch_size)
    s.set_value("train", "log_every", 1)


def choose_separate_process(window) -> None:
    window.show_page("setup")
    box = window.pages["setup"].separate_process_box
    assert not box.isChecked() and not window.bridge.separate_process  # off unless chosen
    box.click()
    assert window.bridge.separate_process and window.settings.value("training/separateProcess", type=bool)


def test_the_separate_process_choice_is_kept_for_the_next_start_of_the_app(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from finetune_gui.gui.main_window import MainWindow

    path = str(tmp_path / "app.ini")
    first = MainWindow(settings=QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(first)
    choose_separate_process(first)
    first.settings.sync()
    again = MainWindow(settings=QSettings(path, QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert again.bridge.separate_process and again.pages["setup"].separate_process_box.isChecked()


def test_a_run_in_a_separate_process_fills_the_train_page_and_ends_completed(qtbot, window, tmp_path, monkeypatch):
    set_up_run(window, tmp_path, epochs=2, batch_size=4)
    choose_separate_process(window)
    page, bridge = window.pages["monitor"], window.bridge
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    pids = []
    bridge.run_started.connect(lambda e: pids.append(bridge.child_pid))
    failed = []
    bridge.run_failed.connect(failed.append)
    with qtbot.waitSignal(bridge.run_finished, timeout=180_000) as finished:
        window.start_training()
        assert bridge.is_training and bridge.child_pid in in_session(bridge.child_pid)  # a session of its own
        assert not page.pause_button.isEnabled() and page.pause_button.toolTip() == NO_PAUSE_IN_CHILD
        assert page.stop_button.isEnabled() and not window.pause_action.isEnabled()
        assert window.close() is False and asked  # closing asks, as for a run in a thread; No goes on
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=30_000)
    assert finished.args[0].status == "completed" and failed == []

    loss = page.plots["loss"].series
    assert len(loss["train"]) >= 2 and (loss["train"].y > 0).all()
    assert list(loss["validation"].x) == [5.0, 10.0]  # 18 training images at batch 4: 5 steps per epoch
    assert list(page.plots["metric"].series["metric"].x) == [1.0, 2.0]
    assert len(page.plots["lr"].series["lr"]) >= 2
    assert "Run completed" in page.status_label.text() and page.step_label.text() == "Step 10/10"
    log = page.log_view.toPlainText()
    assert "training in a separate process (pid " in log and "best checkpoint saved" in log
    [run] = list((tmp_path / "runs").iterdir())
    assert window.state.run_dir == run and json.loads((run / "status.json").read_text())["state"] == "completed"
    assert pids
    wait_until_none_left(qtbot, pids[0])  # nothing of the child is left
    assert page.pause_button.toolTip() != NO_PAUSE_IN_CHILD  # the next run may be one in a thread


def test_stop_ends_the_child_in_time_with_a_checkpoint_that_resumes_and_no_process_left(qtbot, window, tmp_path):
    set_up_run(window, tmp_path, epochs=50, batch_size=2, per_class=20)
    window.bridge.separate_process = True
    page, bridge = window.pages["monitor"], window.bridge
    failed, pids = [], []
    bridge.run_failed.connect(failed.append)

    def stop_at_the_first_step(event) -> None:
        if not pids:
            pids.append(bridge.child_pid)
            qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)

    bridge.step.connect(stop_at_the_first_step)
    window.start_training()
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=180_000)
    assert failed == []  # it ended by itself: not killed after the grace time, not failed
    assert "Run stopped" in page.status_label.text() and page.resume_run_button.isEnabled()
    [run] = list((tmp_path / "runs").iterdir())
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert list((run / "checkpoints").glob("step-*.state.pt"))
    assert pids
    wait_until_none_left(qtbot, pids[0])

    # Resume run continues it in a child process too (`finetune-gui resume`), from the checkpoint Stop left
    started = []
    pids.clear()  # so its first step stops it again
    bridge.run_started.connect(started.append)
    qtbot.mouseClick(page.resume_run_button, Qt.MouseButton.LeftButton)
    assert bridge.is_training
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=180_000)
    assert failed == [] and len(started) == 1
    assert started[0].resumed_from_step > 0 and started[0].run_dir == str(run)
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"  # stopped at its first step again
    wait_until_none_left(qtbot, pids[0])


def test_a_stop_before_the_child_has_begun_says_so_on_the_train_page(qtbot, window, tmp_path):
    set_up_run(window, tmp_path, epochs=1, batch_size=4)
    window.bridge.separate_process = True
    page, bridge = window.pages["monitor"], window.bridge
    failed = []
    bridge.run_failed.connect(failed.append)
    window.start_training()
    pid = bridge.child_pid
    bridge.stop()  # long before the child has imported the engine and set its SIGTERM handler
    qtbot.waitUntil(lambda: not bridge.is_training, timeout=30_000)
    assert failed == [] and page.status_label.text() == "Stopped before the run started."
    assert page.start_button.isEnabled() and not page.resume_run_button.isEnabled()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    wait_until_none_left(qtbot, pid)


def test_closing_the_window_with_yes_stops_the_child_and_waits_for_it(qtbot, window, tmp_path, monkeypatch):
    seconds = f"60.{time.monotonic_ns() % 10**9}"
    # the CLI's part, cut down: a run that stops on SIGTERM with the CLI's exit code for a stop (and a leftover)
    script = f"trap 'exit {cli.EXIT_STOPPED}' TERM; sleep {seconds} & while true; do sleep 0.05; done"
    monkeypatch.setattr(child_run, "child_command", lambda args, nproc=1: ["sh", "-c", script])
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    set_up_run(window, tmp_path, epochs=1, batch_size=4)
    window.bridge.separate_process = True
    window.show()
    window.start_training()
    pid = window.bridge.child_pid
    qtbot.waitUntil(lambda: len(running(seconds)) == 2, timeout=10_000)  # sh and its sleep
    assert window.close() is True
    assert not window.bridge.is_training  # close() waited for the child
    wait_until_none_left(qtbot, pid)
    qtbot.waitUntil(lambda: running(seconds) == [], timeout=5_000)


def test_a_child_killed_from_outside_becomes_a_failure_that_says_so(qtbot, tmp_path):
    make_image_folder(tmp_path / "images")
    from finetune_gui.config import validate_dict

    config = validate_dict({"data": {"path": str(tmp_path / "images")}, "model": {"name": "resnet18"}})
    child = training_child(config, tmp_path / "runs")
    got = []
    child.event.connect(got.append)
    with qtbot.waitSignal(child.ended, timeout=30_000):
        child.start()
        pid = child.pid
        os.kill(pid, signal.SIGKILL)  # as a crash or an out-of-memory killer would
    [failed] = [e for e in got if isinstance(e, RunFailed)]
    assert isinstance(failed, RunFailed) and failed.error_type == "ChildProcessError"
    assert "SIGKILL" in failed.message
    assert not child.folder.exists()
    wait_until_none_left(qtbot, pid)


@pytest.fixture
def shell_child(tmp_path):
    """A ChildRun whose command is a shell script (what the CLI would do, cut down); killed if a test leaves it."""
    made = []

    def make(script: str) -> ChildRun:
        folder = tmp_path / f"child{len(made)}"
        folder.mkdir()
        child = ChildRun([], folder)
        child.command = ["sh", "-c", script]
        made.append(child)
        return child

    yield make
    for child in made:
        if child.running:
            child.kill()
            child.process.waitForFinished(5000)


def test_a_child_that_fails_before_its_run_begins_reports_the_clis_error(qtbot, shell_child):
    # what `finetune-gui train` does with a config it cannot read: says why on stderr, exits 2 (cli.EXIT_CONFIG)
    child = shell_child("echo loading >&2; echo 'error: invalid config' >&2; echo '  no such file' >&2; exit 2")
    got = []
    child.event.connect(got.append)
    with qtbot.waitSignal(child.ended, timeout=30_000):
        child.start()
    [failed] = [e for e in got if isinstance(e, RunFailed)]
    assert failed.error_type == "ConfigError" and failed.message == "invalid config\n  no such file"
    assert failed.details == "loading\nerror: invalid config\n  no such file"  # the child's last stderr lines


def test_what_a_child_leaves_behind_is_killed_when_it_ends(qtbot, shell_child):
    seconds = f"60.{time.monotonic_ns() % 10**9}"  # a sleep no other test runs
    child = shell_child(f"sleep {seconds} & exit 0")  # a grandchild that outlives its parent
    got = []
    child.event.connect(got.append)
    with qtbot.waitSignal(child.ended, timeout=30_000):
        child.start()
        pid = child.pid
    wait_until_none_left(qtbot, pid)
    qtbot.waitUntil(lambda: running(seconds) == [], timeout=5_000)
    [failed] = [e for e in got if isinstance(e, RunFailed)]
    assert "exit code 0 without saying how the run went" in failed.message


def test_a_child_that_ignores_stop_is_killed_with_its_group_after_the_grace_time(qtbot, shell_child):
    seconds = f"60.{time.monotonic_ns() % 10**9}"
    child = shell_child(f"trap '' TERM; sleep {seconds} & sleep {seconds} & wait")
    child.stop_grace_s = 0.5
    got = []
    child.event.connect(got.append)
    child.start()
    pid = child.pid
    qtbot.waitUntil(lambda: len(in_session(pid)) == len(running(seconds)) == 3, timeout=10_000)  # sh, 2 sleeps
    with qtbot.waitSignal(child.ended, timeout=30_000):
        child.stop()
    wait_until_none_left(qtbot, pid)
    qtbot.waitUntil(lambda: running(seconds) == [], timeout=5_000)
    [failed] = [e for e in got if isinstance(e, RunFailed)]
    assert failed.error_type == "ChildProcessError" and "did not end within 0.5 s of Stop" in failed.message


def test_each_poll_hands_on_every_event_in_order_but_only_the_newest_of_a_run_of_steps(tmp_path):
    from finetune_gui.core.training.event_stream import EventFileWriter
    from finetune_gui.core.training.events import EpochMetrics, LogMessage, Probed

    child = ChildRun([], tmp_path)
    got = []
    child.event.connect(got.append)

    def step(n: int) -> StepMetrics:
        return StepMetrics(0, n, 10, 1.0 / n, 1e-3, 1.0, 50.0, 10.0 - n)

    def probe(n: int) -> Probed:
        return Probed(n, ("head",), (0.1,), {})

    with EventFileWriter(child.events_path) as write:
        for event in [step(1), probe(1), step(2), step(3), probe(3), EpochMetrics(0, 3, {"val_loss": 0.5}, 1e-3, 1.0)]:
            write(event)
        child.poll()
        assert got == [step(3), probe(3), EpochMetrics(0, 3, {"val_loss": 0.5}, 1e-3, 1.0)]
        got.clear()
        for event in [step(4), LogMessage("info", "between"), step(5), step(6)]:
            write(event)
        child.poll()
    assert got == [step(4), LogMessage("info", "between"), step(6)]


def test_the_exit_codes_read_back_are_the_clis():
    assert child_run.ERROR_TYPE_BY_EXIT_CODE == {
        cli.EXIT_CONFIG: "ConfigError",
        cli.EXIT_DATA: "DataError",
        cli.EXIT_MODEL: "ModelLoadError",
        cli.EXIT_DIVERGED: "Diverged",
        cli.EXIT_OOM: "OutOfMemory",
        cli.EXIT_RUN: "RunStateError",
        cli.EXIT_STORAGE: "StorageError",
    }
    assert child_run.EXIT_STOPPED == cli.EXIT_STOPPED


def test_several_processes_run_under_torchrun_on_this_machine():
    command = child_command(["train", "c.toml", "--events", "e.jsonl"], nproc=4)
    python, *rest = command
    assert rest[:6] == ["-m", "torch.distributed.run", "--nproc-per-node", "4", "--standalone", "-m"]
    assert rest[6:] == ["finetune_gui", "train", "c.toml", "--events", "e.jsonl"]
    assert child_command(["train", "c.toml"])[1:] == ["-m", "finetune_gui", "train", "c.toml"]
