"""Case 6: rotation keeps exactly the last K step checkpoints plus the best; the best is never deleted; a new
checkpoint is complete before an old one goes."""

from __future__ import annotations

import pathlib

import pytest
import torch

from finetune_gui.core.checkpoints import (
    CheckpointInfo,
    list_checkpoints,
    load_checkpoint,
    rotate_checkpoints,
    save_checkpoint,
    step_tag,
)
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.engine import fit
from tests.faults.helpers import image_config


def _files(run_dir) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").iterdir())


@pytest.mark.parametrize("keep_last", [1, 2])
def test_a_run_keeps_exactly_the_last_k_checkpoints_and_the_best(tmp_path, tinynet, images, keep_last):
    config = image_config(images, train={"epochs": 4}, checkpoint={"keep_last": keep_last})
    result = fit(config, None, output_dir=tmp_path / "runs")
    assert result.status == "completed"
    run = RunDir(result.run_dir)
    steps = [c.step for c in list_checkpoints(run)]
    assert steps == [5 * e for e in range(4 - keep_last + 1, 5)]  # 5 steps per epoch, one save per epoch
    expected = {f"best{s}" for s in (".safetensors", ".state.pt", ".sha256")}
    for step in steps:
        expected |= {f"{step_tag(step)}{s}" for s in (".safetensors", ".state.pt", ".sha256")}
    assert set(_files(run.root)) == expected  # nothing else: no temp files, no orphans
    for c in list_checkpoints(run):
        load_checkpoint(c)


def test_the_best_checkpoint_survives_rotation_when_its_epoch_is_long_gone(tmp_path, tinynet, images):
    # min_delta so large that only the first epoch counts as best; keep_last=1 rotates its step checkpoint away
    config = image_config(images, train={"epochs": 4}, checkpoint={"keep_last": 1}, early_stopping={"min_delta": 1e9})
    result = fit(config, None, output_dir=tmp_path / "runs")
    run = RunDir(result.run_dir)
    assert [c.step for c in list_checkpoints(run)] == [20]
    best = CheckpointInfo(run.checkpoints / "best.safetensors", run.checkpoints / "best.state.pt", -1)
    _, state = load_checkpoint(best)
    assert state["epoch"] == 0 and state["step"] == 5
    assert result.best_epoch == 0


def test_no_checkpoint_file_is_deleted_before_a_newer_complete_checkpoint_checks_out(
    tmp_path, tinynet, images, monkeypatch
):
    """Watch every deletion during a run: at that moment keep_last newer checkpoints must verify."""
    config = image_config(images, train={"epochs": 5}, checkpoint={"keep_last": 2})
    deletions: list[tuple[str, list[int]]] = []
    real_unlink = pathlib.Path.unlink

    def watched_unlink(self, missing_ok=False):
        if self.parent.name == "checkpoints" and self.name.startswith("step-") and self.exists():
            run = RunDir(self.parent.parent)
            verified = []
            for c in list_checkpoints(run):
                if c.weights.name.split(".")[0] == self.name.split(".")[0]:
                    continue
                try:
                    load_checkpoint(c)
                    verified.append(c.step)
                except Exception:  # noqa: BLE001 - counted as not verified
                    pass
            deletions.append((self.name, verified))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", watched_unlink)
    result = fit(config, None, output_dir=tmp_path / "runs")
    assert result.status == "completed"
    assert deletions, "rotation deleted nothing; the test did not exercise it"
    for name, verified in deletions:
        step = int(name.split("-")[1].split(".")[0])
        assert len([s for s in verified if s > step]) >= 2, (name, verified)


def _save(run: RunDir, step: int) -> CheckpointInfo:
    return save_checkpoint(run, step_tag(step), {"w": torch.full((4,), float(step))}, {"step": step})


def test_rotation_removes_leftovers_of_cut_off_saves_but_never_newer_files_or_the_best(tmp_path):
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    _save(run, 1)
    cut = _save(run, 2)
    cut.manifest.unlink()  # step 2's save was cut off before its manifest
    (run.checkpoints / f"{step_tag(3)}.safetensors").write_bytes(b"half")  # and step 3's before its state
    best = save_checkpoint(run, "best", {"w": torch.zeros(4)}, {"step": 1})
    _save(run, 4)
    in_progress = run.checkpoints / f"{step_tag(9)}.safetensors"
    in_progress.write_bytes(b"newer than the newest complete one")

    rotate_checkpoints(run, keep_last=2)
    names = _files(run.root)
    assert [c.step for c in list_checkpoints(run)] == [1, 4]
    assert not any(n.startswith((step_tag(2), step_tag(3))) for n in names), names
    assert in_progress.name in names
    for f in best.files:
        assert f.exists()

    _save(run, 5)
    rotate_checkpoints(run, keep_last=2)
    assert [c.step for c in list_checkpoints(run)] == [4, 5]
    load_checkpoint(best)


def test_keep_last_larger_than_the_number_of_checkpoints_deletes_nothing(tmp_path):
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    for s in (1, 2):
        _save(run, s)
    assert rotate_checkpoints(run, keep_last=5) == []
    assert [c.step for c in list_checkpoints(run)] == [1, 2]
