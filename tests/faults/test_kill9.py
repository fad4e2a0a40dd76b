"""Case 1: `kill -9` of a training process, at exact points of a checkpoint save and at random moments. After
each kill: every file under a final name is complete, the newest complete checkpoint loads, leftover temp files
are cleaned when the run is opened again, and `resume` continues — to the same weights as a run never killed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finetune_gui.cli import main
from finetune_gui.core.checkpoints import latest_usable_checkpoint, list_checkpoints, step_tag
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.engine import fit
from finetune_gui.files import TMP_PREFIX
from tests.faults.helpers import image_config, weights_equal

REPO = Path(__file__).resolve().parents[2]
S10 = step_tag(10)  # epoch 2's checkpoint (5 steps per epoch)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The config file, and the final weights of the same run never interrupted."""
    from tests.conftest import make_image_folder
    from tests.faults.helpers import register_tinynet, unregister_tinynet

    root = tmp_path_factory.mktemp("kill9")
    images = make_image_folder(root / "images")
    config = image_config(images, train={"epochs": 3}, checkpoint={"keep_last": 2})
    path = root / "config.toml"
    path.write_text(config.to_toml())
    added = register_tinynet()
    try:
        straight = fit(config, None, output_dir=root / "straight")
    finally:
        if added:
            unregister_tinynet()
    assert straight.status == "completed"
    return path, straight.run_dir / "model.safetensors"


def _start(config: Path, output: Path, pause_at: str = "") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.kill_driver", str(config), str(output), pause_at],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _kill_when_paused(proc: subprocess.Popen, timeout: float = 120) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line.strip())
        if line.startswith("PAUSED"):
            break
        assert time.monotonic() < deadline, "the child never reached the pause point"
    else:
        raise AssertionError(f"the child ended without pausing (rc {proc.wait()}): {lines[-5:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return lines


def _assert_final_names_hold_complete_files(run: Path) -> None:
    """No partial file under a final name: every checkpoint file and every JSON record parses in full."""
    for f in (run / "checkpoints").iterdir():
        if f.name.startswith(TMP_PREFIX):
            continue
        if f.suffix == ".safetensors":
            load_file(str(f))
        elif f.name.endswith(".state.pt"):
            torch.load(f, map_location="cpu", weights_only=True)
        elif f.suffix == ".sha256":
            assert len(f.read_text().splitlines()) == 2, f
    for name in ("status.json", "labels.json", "data_problems.json", "environment.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())


def _check_and_resume(output: Path, final: Path) -> Path | None:
    runs = [p for p in output.iterdir() if p.is_dir()] if output.exists() else []
    if not runs or not (runs[0] / "config.toml").exists():
        return None  # killed before the run folder was made: nothing to resume, nothing damaged
    run = runs[0]
    _assert_final_names_hold_complete_files(run)
    if not list_checkpoints(RunDir(run)):
        assert main(["resume", str(run)]) == 7  # "nothing to resume from", not a traceback
        return run
    info, _, _, skipped = latest_usable_checkpoint(RunDir(run))
    # passed over only saves cut off before their manifest (written last), never a damaged or half-listed one
    assert all("cut off while saving" in s for s in skipped), skipped
    assert main(["resume", str(run), "--quiet"]) == 0
    assert not list(run.rglob(TMP_PREFIX + "*")), "temp files of the killed save are still there"
    assert weights_equal(final, run / "model.safetensors")
    return run


SLOW = pytest.mark.slow  # ~15 s each (a child process imports torch); one point runs in the quick suite
POINTS = [
    pytest.param(f"mid-write:{S10}.safetensors", marks=SLOW),  # weights half written to their temp file
    pytest.param(f"written:{S10}.state.pt", marks=SLOW),  # weights and state complete as temp files, no manifest
    pytest.param(f"renamed:{S10}.safetensors", marks=SLOW),  # weights under their final name, state/manifest not
    pytest.param(f"renamed:{S10}.state.pt", marks=SLOW),  # weights and state in place, manifest not
    # epoch 1's best half replaced by epoch 2's (old manifest gone, temp files of its state and manifest left)
    "renamed:best.safetensors#2",
    pytest.param("renamed:best.safetensors", marks=SLOW),  # the very first save: nothing to resume from yet
    pytest.param("mid-write:status.json#3", marks=SLOW),  # the status written after the step-10 save
    pytest.param("mid-write:metrics.csv#2", marks=SLOW),  # epoch 2's metrics table
]


@pytest.mark.parametrize("pause_at", POINTS)
def test_a_kill_at_any_point_of_a_save_leaves_a_resumable_run_that_ends_identical(tmp_path, tinynet, setup, pause_at):
    config, final = setup
    lines = _kill_when_paused(_start(config, tmp_path / "runs", pause_at))
    assert lines[-1] == f"PAUSED {pause_at}"
    run = _check_and_resume(tmp_path / "runs", final)
    assert run is not None
    steps = [c.step for c in list_checkpoints(RunDir(run))]
    if pause_at == "renamed:best.safetensors":
        assert steps == [], steps  # resume said "nothing to resume from" (exit 7) and changed nothing
    else:
        assert steps == [10, 15], steps  # the run went on from the killed save and rotated as usual


@pytest.mark.slow
def test_kills_at_random_moments_always_leave_a_resumable_run(tmp_path, tinynet, setup):
    """Six kills at seeded random moments of the training part (after the first file write): mostly between
    and inside saves, which take most of a tiny run's time."""
    config, final = setup
    rng = random.Random(1234)
    last_lines = []
    for trial in range(6):
        output, log = tmp_path / f"runs{trial}", tmp_path / f"child{trial}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.kill_driver", str(config), str(output)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 120
        while "WRITE" not in log.read_text() and proc.poll() is None:
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        lines = log.read_text().split("\n")
        last_lines.append(next((x for x in reversed(lines) if x), ""))
        _check_and_resume(output, final)
    assert sum("WRITE" in x or "RENAME" in x for x in last_lines) >= 2, last_lines  # kills landed in saves
