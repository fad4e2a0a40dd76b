"""kill -9 of one process of a torchrun job: the job ends (torchrun takes the others down; nothing waits on the
dead rank), the newest complete checkpoint is intact, and `resume` continues the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from finetune_gui.core.checkpoints import latest_usable_checkpoint, list_checkpoints
from finetune_gui.core.runs import RunDir
from tests.distributed.launching import cli, environment, make_task, run, standalone

pytestmark = pytest.mark.slow

JOB_ENDS_WITHIN_S = 90  # torchrun notices a dead worker within a second; the margin is for a loaded machine


def worker_of_rank(job: subprocess.Popen, rank: int) -> psutil.Process | None:
    for child in psutil.Process(job.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "finetune_gui" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


def leftovers(folder) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.cwd() == str(folder) and "finetune_gui" in " ".join(p.cmdline()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def test_killing_one_rank_ends_the_job_and_the_run_resumes(tmp_path):
    make_task(tmp_path, epochs=8, samples=160)
    job = subprocess.Popen(
        standalone(2) + cli("train", "config.toml", "--output", "runs", "--quiet"),
        cwd=tmp_path, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and job.poll() is None:
            runs = list((tmp_path / "runs").glob("*/checkpoints"))
            if runs and list_checkpoints(RunDir(runs[0].parent)):
                break
            time.sleep(0.2)
        assert job.poll() is None, "the job ended before its first checkpoint; give it more epochs"
        victim = worker_of_rank(job, 1)
        assert victim is not None
        victim.send_signal(signal.SIGKILL)
        job.wait(timeout=JOB_ENDS_WITHIN_S)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    assert not leftovers(tmp_path), "no process of the job may outlive it"
    (folder,) = (tmp_path / "runs").iterdir()
    info, *_ = latest_usable_checkpoint(RunDir(folder))  # loads and checks out
    run([sys.executable, *cli("resume", str(folder), "--quiet")], tmp_path)
    assert RunDir(folder).read_status()["state"] == "completed"
    assert info.step < RunDir(folder).read_status()["step"]
