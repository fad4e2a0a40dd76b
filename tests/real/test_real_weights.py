"""Real transfer learning with real pretrained weights and real data (../shared/OFFLINE_ASSETS.md).

These are slow (minutes on 2 CPU cores) and marked `real`; select them with `-m real`, leave them out with
`-m "not real"`. Each is skipped, with the install command, when its asset is not on the machine.
"""

from __future__ import annotations

import json

import pytest

from finetune_gui.config import validate_dict
from finetune_gui.core.training.batches import evaluate
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.prepare import prepare
from tests.real.conftest import above_info, write_sentiment_csv

pytestmark = [pytest.mark.real, pytest.mark.slow]


#: MiniLM mean-pooled embeddings + logistic regression on the same task, 2,000 train / 1,000 test.
MINILM_LINEAR_PROBE_ACCURACY = 0.729
TRAIN, VAL, TEST = 2000, 300, 1000


def test_minilm_fine_tuned_on_rotten_tomatoes_beats_the_linear_probe(tmp_path, minilm_dir, capsys):
    total = TRAIN + VAL + TEST
    data = write_sentiment_csv(tmp_path / "rt.csv", per_class=total // 2)
    config = validate_dict(
        {
            "name": "minilm-rt",
            "task": {"kind": "text-classification"},
            "data": {
                "path": str(data),
                "text_column": "text",
                "label_columns": ["label"],
                "val_fraction": VAL / total,
                "test_fraction": TEST / total,
                "max_length": 48,
            },
            "model": {"name": str(minilm_dir), "source": "huggingface", "freeze": "none"},
            "train": {
                "epochs": 1,
                "batch_size": 32,
                "optimizer": "adamw",
                "lr": 1e-4,
                "weight_decay": 0.01,
                "schedule": "linear-warmup",
                "warmup_fraction": 0.1,
                "seed": 0,
                "log_every": 20,
            },
        }
    ).with_base_dir(tmp_path)

    result = fit(config, output_dir=tmp_path / "runs")

    assert result.status == "completed", result
    evaluation = json.loads((result.run_dir / "evaluation.json").read_text())
    assert evaluation["num_samples"] == TEST
    accuracy = evaluation["accuracy"]
    with capsys.disabled():
        print(
            f"\n[real] MiniLM on Rotten Tomatoes: test accuracy {accuracy:.3f} "
            f"(linear probe {MINILM_LINEAR_PROBE_ACCURACY}) on {TEST} held-out reviews"
        )
    assert accuracy > MINILM_LINEAR_PROBE_ACCURACY
    assert above_info(result.run_dir) == []


def test_smollm2_lora_on_fortunes_lowers_held_out_loss(tmp_path, smollm2_dir, fortunes_text, capsys):
    config = validate_dict(
        {
            "name": "smollm2-fortunes",
            "task": {"kind": "causal-lm"},
            "data": {
                "path": str(fortunes_text),
                "format": "txt",
                "val_fraction": 0.1,
                "test_fraction": 0.1,
                "max_length": 64,
                "max_samples": 120,
            },
            "model": {
                "name": str(smollm2_dir),
                "source": "huggingface",
                "freeze": "none",
                "lora": {"enabled": True, "r": 8, "alpha": 16},
            },
            "train": {
                "epochs": 1,
                "batch_size": 8,
                "optimizer": "adamw",
                "lr": 1e-3,
                "schedule": "constant",
                "seed": 0,
                "log_every": 4,
                "precision": "fp32",
            },
        }
    ).with_base_dir(tmp_path)
    untrained = prepare(config)
    before = evaluate(untrained, untrained.test_loader).compute()["loss"]
    del untrained

    result = fit(config, output_dir=tmp_path / "runs")

    assert result.status == "completed", result
    after = json.loads((result.run_dir / "evaluation.json").read_text())["loss"]
    with capsys.disabled():
        print(f"\n[real] SmolLM2-135M + LoRA on fortunes: held-out loss {before:.3f} -> {after:.3f}")
    assert after < before - 0.05
    assert above_info(result.run_dir) == []
