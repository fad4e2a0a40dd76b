"""Gradual unfreezing through the engine: the optimiser holds every block from the start, and a block it
unfreezes at an epoch's start trains from then on (core/training/recipe.optimiser_groups)."""

from __future__ import annotations

from safetensors.torch import load_file

from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import EventLog, LogMessage
from tests.faults.helpers import image_config


def test_a_block_unfrozen_at_an_epochs_start_trains_from_then_on(tmp_path, tinynet, images):
    config = image_config(images, model={"freeze": "head-only", "gradual_unfreeze_every": 1},
                          train={"epochs": 2, "feature_cache": "off"})  # fmt: skip
    log = EventLog()
    result = fit(config, log, output_dir=tmp_path / "runs")
    assert result.status == "completed"
    unfrozen = [e.text for e in log.of(LogMessage) if "unfroze" in e.text]
    assert len(unfrozen) == 1 and unfrozen[0].startswith("epoch 2: unfroze")
    block = unfrozen[0].split("unfroze ")[1]

    first = load_file(str(result.run_dir / "checkpoints" / "step-00000005.safetensors"))
    final = load_file(str(result.run_dir / "model.safetensors"))
    moved = [k for k in first if k.startswith(block + ".") and not bool((first[k] == final[k]).all())]
    assert moved, f"{block} was unfrozen but did not train"
