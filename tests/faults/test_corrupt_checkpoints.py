"""Case 3: truncated or bit-flipped checkpoints are detected before use (hash manifest), with a clear message,
and the previous checkpoint is used instead."""

from __future__ import annotations

import random

import pytest
import torch

from finetune_gui.cli import main
from finetune_gui.core.checkpoints import (
    latest_usable_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    step_tag,
)
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.runs import RunDir
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import EventLog, LogMessage, RunStarted
from tests.faults.helpers import image_config, weights_equal


def _run_dir(tmp_path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.checkpoints.mkdir(parents=True)
    return run


def _save(run: RunDir, step: int):
    torch.manual_seed(step)
    weights = {"layer.weight": torch.randn(16, 8), "layer.bias": torch.randn(16)}
    state = {"step": step, "epoch": 0, "optimizer": {"exp_avg": torch.randn(16, 8)}, "note": "plain data"}
    return save_checkpoint(run, step_tag(step), weights, state), weights


def _flip(path, position: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_every_single_bit_flip_in_weights_or_state_is_detected_before_use(tmp_path):
    run = _run_dir(tmp_path)
    info, _ = _save(run, 1)
    originals = {f: f.read_bytes() for f in (info.weights, info.state)}
    rng = random.Random(0)
    tried = 0
    for f, data in originals.items():
        # every byte of the header region, and a spread of positions through the rest
        positions = sorted(set(range(min(len(data), 64))) | {rng.randrange(len(data)) for _ in range(150)})
        for pos in positions:
            _flip(f, pos, rng.randrange(8))
            with pytest.raises(RunStateError, match="damaged|unreadable"):
                load_checkpoint(info)
            f.write_bytes(data)
            tried += 1
    assert tried > 300
    load_checkpoint(info)  # restored files load again


@pytest.mark.parametrize("which", ["weights", "state"])
@pytest.mark.parametrize("keep", [0, 1, 0.5, -1])
def test_a_truncated_file_is_detected(tmp_path, which, keep):
    run = _run_dir(tmp_path)
    info, _ = _save(run, 1)
    f = info.weights if which == "weights" else info.state
    data = f.read_bytes()
    cut = {0: 0, 1: 1, 0.5: len(data) // 2, -1: len(data) - 1}[keep]
    f.write_bytes(data[:cut])
    with pytest.raises(RunStateError) as err:
        load_checkpoint(info)
    assert f.name in str(err.value) and ("damaged" in str(err.value) or "unreadable" in str(err.value))


def test_a_checkpoint_without_its_manifest_never_counts(tmp_path):
    run = _run_dir(tmp_path)
    first, _ = _save(run, 1)
    second, _ = _save(run, 2)
    second.manifest.unlink()  # as if the save was cut off after the state file
    assert [c.step for c in list_checkpoints(run)] == [1]
    info, _, _, skipped = latest_usable_checkpoint(run)
    assert info.step == 1
    assert any("step-00000002" in s and "incomplete" in s for s in skipped)
    with pytest.raises(RunStateError, match="no hash manifest"):
        load_checkpoint(second)


def test_the_previous_checkpoint_is_offered_when_the_newest_is_damaged(tmp_path):
    run = _run_dir(tmp_path)
    _, w1 = _save(run, 1)
    newest, _ = _save(run, 2)
    _flip(newest.weights, len(newest.weights.read_bytes()) - 5)
    info, weights, state, skipped = latest_usable_checkpoint(run)
    assert info.step == 1 and state["step"] == 1
    assert torch.equal(weights["layer.weight"], w1["layer.weight"])
    assert len(skipped) == 1 and "step-00000002.safetensors" in skipped[0] and "damaged" in skipped[0]


def test_resume_passes_over_a_bit_flipped_newest_checkpoint_says_so_and_still_ends_identical(tmp_path, tinynet, images):
    config = image_config(images, train={"epochs": 3}, checkpoint={"keep_last": 3})
    straight = fit(config, None, output_dir=tmp_path / "straight")
    assert straight.status == "completed"

    # the same run, "interrupted" after epoch 3's checkpoint, whose state file then gets a flipped bit
    run = RunDir(straight.run_dir)
    steps = [c.step for c in list_checkpoints(run)]
    assert len(steps) == 3
    newest = list_checkpoints(run)[-1]
    (run.root / "model.safetensors").rename(tmp_path / "straight.safetensors")
    _flip(newest.state, newest.state.stat().st_size // 2)

    log = EventLog()
    result = resume(run.root, log)
    assert result.status == "completed"
    warnings = [e.text for e in log.of(LogMessage) if e.level == "warning"]
    assert any("passed over a damaged checkpoint" in w and newest.state.name in w for w in warnings), warnings
    assert log.of(RunStarted)[0].resumed_from_step == steps[-2]  # the previous one was used
    assert weights_equal(tmp_path / "straight.safetensors", run.root / "model.safetensors")


def test_cli_resume_with_only_damaged_checkpoints_fails_with_exit_7_and_names_the_files(
    tmp_path, tinynet, images, capsys
):
    config = image_config(images, train={"epochs": 2}, checkpoint={"keep_last": 2})
    result = fit(config, None, output_dir=tmp_path / "runs")
    run = RunDir(result.run_dir)
    for c in list_checkpoints(run):
        c.weights.write_bytes(c.weights.read_bytes()[:100])
    assert main(["resume", str(run.root)]) == 7
    err = capsys.readouterr().err
    assert "nothing to resume from" in err
    assert all(c.weights.name in err for c in list_checkpoints(run))


def test_a_damaged_best_checkpoint_does_not_fail_the_end_of_a_resumed_run(tmp_path, tinynet, images):
    from finetune_gui.core.training.events import RunControl, StepMetrics

    # min_delta so large that only epoch 1 is ever "best": the damaged best file is not rewritten later
    config = image_config(images, train={"epochs": 3}, early_stopping={"min_delta": 1e9})
    control = RunControl()

    def stop_in_epoch_3(event):
        if isinstance(event, StepMetrics) and event.step == 12:
            control.stop()

    first = fit(config, stop_in_epoch_3, control, output_dir=tmp_path / "runs")
    assert first.status == "stopped"
    best = first.run_dir / "checkpoints" / "best.safetensors"
    _flip(best, best.stat().st_size - 3)
    log = EventLog()
    result = resume(first.run_dir, log)
    assert result.status == "completed" and result.best_epoch == 0
    warnings = [e.text for e in log.of(LogMessage) if e.level == "warning"]
    assert any("best checkpoint cannot be used" in w and "damaged" in w for w in warnings), warnings
    assert (first.run_dir / "model.safetensors").exists()
