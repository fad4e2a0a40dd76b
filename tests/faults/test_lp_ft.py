"""The lp-ft recipe (issue 15, item 3): stage 1 trains the head alone from cached features, leaving the backbone as
it was; stage 2 fine-tunes from that head at train.lr × ft_lr_mult; the LR schedule runs once per stage; and a
run stopped in either stage resumes to the weights of one never interrupted."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from finetune_gui.config import ConfigError, validate_dict
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import LogMessage, RunControl, StepMetrics
from finetune_gui.core.training.optim import planned_lrs
from finetune_gui.core.training.prepare import prepare
from finetune_gui.core.training.recipe import probe_stage
from tests.faults.helpers import image_config, weights_equal

LP_FT = {"epochs": 3, "recipe": "lp-ft", "lp_epochs": 1, "ft_lr_mult": 0.1, "lr": 1e-2, "schedule": "constant"}
STILL = {"random_resized_crop": False, "hflip": 0.0}  # nothing random before the cut: the cache applies


def config(images, **train):
    return image_config(images, model={"freeze": "none"}, augment=STILL, train={**LP_FT, **train})


def listener(logs: list[str], control: RunControl | None = None, stop_at: int | None = None):
    def heard(event):
        if isinstance(event, LogMessage):
            logs.append(event.text)
        if control is not None and isinstance(event, StepMetrics) and event.step == stop_at:
            control.stop()

    return heard


def test_the_probe_stage_leaves_the_backbone_and_the_fine_tuning_stage_trains_it_at_the_lower_lr(
    tmp_path, tinynet, images
):
    logs: list[str] = []
    cfg = config(images, epochs=2)
    before = {k: v.clone() for k, v in prepare(probe_stage(cfg)).model.state_dict().items()}  # the seeded start
    result = fit(cfg, listener(logs), output_dir=tmp_path / "runs")
    assert result.status == "completed"
    assert any(line.startswith("feature cache: on") for line in logs)
    assert any("lp-ft stage 2 from epoch 2" in line and "freeze 'none'" in line for line in logs)

    rows = [json.loads(line) for line in (result.run_dir / "steps.jsonl").read_text().splitlines()]
    # a row holds the LR the next step takes: steps 1-5 are the probe's, 6-10 the fine-tuning's
    assert [r["lr"] for r in rows if r["step"] < 5] == pytest.approx([1e-2] * 4)
    assert [r["lr"] for r in rows if r["step"] >= 5] == pytest.approx([1e-3] * 6)

    first = load_file(str(_checkpoint_at(result.run_dir, 5)))  # the end of the probe stage
    final = load_file(str(result.run_dir / "model.safetensors"))
    backbone = [k for k in first if not k.startswith("fc.")]
    assert all(bool((first[k] == before[k]).all()) for k in backbone), "stage 1 moved the backbone"
    assert any(not bool((first[k] == before[k]).all()) for k in first if k.startswith("fc.")), "stage 1 trained no head"
    assert any(not bool((final[k] == first[k]).all()) for k in backbone), "stage 2 left the backbone"


def _checkpoint_at(run_dir, step: int):
    return run_dir / "checkpoints" / f"step-{step:08d}.safetensors"


@pytest.mark.parametrize("stop", [3, 7], ids=["in-the-probe", "in-the-fine-tuning"])
def test_a_run_stopped_in_either_stage_resumes_to_the_uninterrupted_weights(tmp_path, tinynet, images, stop):
    cfg = config(images)
    straight = fit(cfg, output_dir=tmp_path / "straight")
    control, logs = RunControl(), []
    stopped = fit(cfg, listener(logs, control, stop), control, output_dir=tmp_path / "stopped")
    assert stopped.status == "stopped"
    resumed = resume(stopped.run_dir, listener(logs))
    assert resumed.status == "completed"
    assert weights_equal(straight.run_dir / "model.safetensors", resumed.run_dir / "model.safetensors")


def test_the_planned_lrs_show_both_stages():
    cfg = validate_dict({"train": {**LP_FT, "schedule": "cosine", "epochs": 4, "lp_epochs": 2}})
    lrs = planned_lrs(cfg.train, total_steps=40, steps_per_epoch=10)
    assert lrs[0] == pytest.approx(1e-2) and lrs[19] < lrs[0]  # stage 1's own cosine
    assert lrs[20] == pytest.approx(1e-3) and lrs[39] < lrs[20]  # stage 2 starts again, at a tenth


def test_a_probe_as_long_as_the_run_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="lp_epochs .3. must be fewer than epochs .3."):
        validate_dict({"train": {**LP_FT, "lp_epochs": 3}})
