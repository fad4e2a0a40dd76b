"""`finetune-gui train/resume --events FILE`: the run's events as JSON lines, rank 0 only; SIGTERM stops like Ctrl+C."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import tomli_w

from finetune_gui.cli import EXIT_OK, EXIT_STOPPED, main
from finetune_gui.core.training import events as ev
from finetune_gui.core.training.event_stream import EventTail
from tests.faults.helpers import image_sections, only_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def signal_handlers():
    """The CLI installs SIGINT/SIGTERM handlers for its run; pytest gets its own back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


@pytest.fixture
def config(tmp_path, tinynet, image_folder, monkeypatch) -> Path:
    monkeypatch.setenv("FINETUNE_GUI_OFFLINE", "1")
    path = tmp_path / "tiny.toml"
    path.write_text(tomli_w.dumps(image_sections(image_folder)), encoding="utf-8")
    return path


def read_all(path: Path) -> list:
    return EventTail(path).read()


def test_train_with_events_writes_the_whole_run_as_json_lines(tmp_path, config, signal_handlers):
    events_file = tmp_path / "events.jsonl"
    args = ["train", str(config), "--output", str(tmp_path / "runs"), "--events", str(events_file), "--quiet"]
    assert main(args) == EXIT_OK
    read = read_all(events_file)
    kinds = [type(e).__name__ for e in read]
    assert all(e.level != "warning" or "skipped" not in e.text for e in read if isinstance(e, ev.LogMessage))
    started = [e for e in read if isinstance(e, ev.RunStarted)]
    assert len(started) == 1 and started[0].run_dir == str(only_run(tmp_path / "runs"))
    steps = [e for e in read if isinstance(e, ev.StepMetrics)]
    assert [e.step for e in steps] == list(range(1, started[0].total_steps + 1))  # every step, none thinned
    assert [e.epoch for e in read if isinstance(e, ev.EpochMetrics)] == [0, 1]
    assert "CheckpointSaved" in kinds and kinds.index("RunStarted") < kinds.index("StepMetrics")
    assert kinds[-1] == "RunFinished" and read[-1].status == "completed" and read[-1].test_metrics


def test_sigterm_stops_the_run_with_a_checkpoint_and_resume_appends_to_the_same_stream(
    tmp_path, config, signal_handlers
):
    events_file = tmp_path / "events.jsonl"

    def terminate_at_the_first_step() -> None:
        tail = EventTail(events_file)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(isinstance(e, ev.StepMetrics) for e in tail.read()):
                os.kill(os.getpid(), signal.SIGTERM)  # what the app's Stop sends its child
                return
            time.sleep(0.01)

    killer = threading.Thread(target=terminate_at_the_first_step)
    killer.start()
    args = ["train", str(config), "--output", str(tmp_path / "runs"), "--events", str(events_file)]
    code = main([*args, "--set", "train.epochs=3"])
    killer.join()
    assert code == EXIT_STOPPED
    run = only_run(tmp_path / "runs")
    assert list((run / "checkpoints").glob("step-*.state.pt"))
    stopped = read_all(events_file)
    assert not any(isinstance(e, (ev.RunFinished, ev.RunFailed)) for e in stopped)
    [started] = [e for e in stopped if isinstance(e, ev.RunStarted)]
    assert max(e.step for e in stopped if isinstance(e, ev.StepMetrics)) < started.total_steps

    assert main(["resume", str(run), "--events", str(events_file), "--quiet"]) == EXIT_OK
    both = read_all(events_file)
    assert both[: len(stopped)] == stopped  # appended, nothing rewritten
    resumed = [e for e in both[len(stopped) :] if isinstance(e, ev.RunStarted)]
    assert len(resumed) == 1 and resumed[0].resumed_from_step > 0 and resumed[0].run_dir == str(run)
    assert isinstance(both[-1], ev.RunFinished) and both[-1].status == "completed"
