"""Case 2: the disk fills up while a checkpoint is saved (simulated ENOSPC: a write that stores part of its data
and then fails, as on a full disk). The run fails with a clear message naming the checkpoint to resume from,
that checkpoint and the best one are intact, rotation deletes nothing, no temp file is left, and once space is
free `resume` ends with the same weights as a run that never hit the full disk."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch

from finetune_gui.cli import EXIT_STORAGE, main
from finetune_gui.core.checkpoints import CheckpointInfo, list_checkpoints, load_checkpoint, save_checkpoint, step_tag
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EventLog, RunFailed
from finetune_gui.files import TMP_PREFIX
from tests.faults.helpers import image_config, weights_equal


class FullDisk:
    """Makes writes to files whose (temp) name contains `target` fail with ENOSPC after half their bytes."""

    def __init__(self, monkeypatch, target: str):
        self.target, self.hits = target, 0
        real_fdopen = os.fdopen
        disk = self

        class HalfWriter:
            def __init__(self, f):
                self._f = f

            def write(self, data):
                disk.hits += 1
                view = memoryview(data)
                self._f.write(view[: len(view) // 2])
                raise OSError(errno.ENOSPC, "No space left on device")

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            try:
                name = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return f
            return HalfWriter(f) if disk.target in Path(name).name else f

        monkeypatch.setattr(os, "fdopen", fdopen)


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob(TMP_PREFIX + "*")]


@pytest.mark.parametrize("file", ["safetensors", "state.pt", "sha256"])
def test_a_full_disk_during_a_save_fails_clearly_and_keeps_the_previous_checkpoint(
    tmp_path, tinynet, images, monkeypatch, file
):
    disk = FullDisk(monkeypatch, f"{step_tag(10)}.{file}")  # epoch 2's checkpoint
    config = image_config(images, train={"epochs": 3}, checkpoint={"keep_last": 1})
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert disk.hits == 1 and result.status == "failed"
    (failed,) = log.of(RunFailed)
    assert failed.error_type == "StorageError" and not failed.details  # no traceback: not a bug
    for words in (
        "the disk is full",
        "Free some space",
        "checkpoints/step-00000005.safetensors, is intact",
        "finetune-gui resume",
    ):
        assert words in failed.message, failed.message
    run = RunDir(result.run_dir)
    assert [c.step for c in list_checkpoints(run)] == [5]  # rotation (keep_last=1) deleted nothing
    load_checkpoint(list_checkpoints(run)[0])
    load_checkpoint(CheckpointInfo(run.checkpoints / "best.safetensors", run.checkpoints / "best.state.pt", -1))
    assert not list(run.checkpoints.glob(f"{step_tag(10)}*")), "part of the failed checkpoint sits under a final name"
    assert _leftovers(run.root) == []
    assert json.loads(run.status.read_text())["state"] == "failed"


def test_once_space_is_free_resume_ends_as_if_the_disk_had_never_filled(tmp_path, tinynet, images, monkeypatch):
    config = image_config(images, train={"epochs": 3}, checkpoint={"keep_last": 1})
    straight = fit(config, None, output_dir=tmp_path / "straight")
    with monkeypatch.context() as m:
        FullDisk(m, f"{step_tag(10)}.state.pt")
        failed = fit(config, None, output_dir=tmp_path / "runs")
    assert failed.status == "failed"
    again = resume(failed.run_dir)
    assert again.status == "completed"
    assert weights_equal(straight.run_dir / "model.safetensors", again.run_dir / "model.safetensors")


def _tensors(value: float) -> dict:
    return {"w": torch.full((64,), value)}


@pytest.mark.parametrize("file", ["safetensors", "state.pt", "sha256"])
def test_a_full_disk_while_overwriting_the_best_checkpoint_leaves_the_old_best_loadable(tmp_path, monkeypatch, file):
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    old = save_checkpoint(run, "best", _tensors(1.0), {"step": 5, "epoch": 0})
    with monkeypatch.context() as m:
        FullDisk(m, f"best.{file}")
        with pytest.raises(OSError) as err:
            save_checkpoint(run, "best", _tensors(2.0), {"step": 10, "epoch": 1})
    assert err.value.errno == errno.ENOSPC
    weights, state = load_checkpoint(old)
    assert state["step"] == 5 and bool((weights["w"] == 1.0).all())
    assert _leftovers(run.root) == []


def test_cli_exits_8_on_a_full_disk_and_says_what_to_do(tmp_path, tinynet, images, monkeypatch, capsys):
    FullDisk(monkeypatch, f"{step_tag(5)}.safetensors")  # the very first checkpoint
    path = tmp_path / "c.toml"
    path.write_text(image_config(images, train={"epochs": 2}).to_toml())
    assert main(["train", str(path), "--output", str(tmp_path / "runs"), "--quiet"]) == EXIT_STORAGE
    err = capsys.readouterr().err
    assert "the disk is full" in err and "checkpoint.output_dir" in err and "Traceback" not in err
    assert "No checkpoint was complete yet" in err


def test_a_full_disk_before_the_run_folder_is_written_is_a_storage_error_too(tmp_path, images, monkeypatch):
    from finetune_gui.core.errors import StorageError

    FullDisk(monkeypatch, "config.toml")
    with pytest.raises(StorageError, match="cannot make a run folder .*No space left"):
        fit(image_config(images), None, output_dir=tmp_path / "runs")
