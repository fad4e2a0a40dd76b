"""A head-only Hugging Face classifier trains from its cached pooled output, and the test metrics the run
reports from the cache equal those of live passes of the full model with the weights it saved."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from finetune_gui.config import validate_dict
from finetune_gui.core.training.batches import evaluate
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.prepare import prepare
from tests.conftest import make_reviews_csv
from tests.factories import tiny_bert_dir


def test_a_head_only_bert_run_reports_from_the_cache_what_live_passes_give(tmp_path):
    config = validate_dict(
        {
            "task": {"kind": "text-classification"},
            "data": {"path": str(make_reviews_csv(tmp_path / "reviews.csv")), "max_length": 16},
            "model": {"name": str(tiny_bert_dir(tmp_path / "bert")), "freeze": "head-only"},
            "train": {"epochs": 2, "batch_size": 8, "lr": 1e-2, "seed": 3},
        }
    )
    logs: list[str] = []
    result = fit(config, lambda e: logs.append(e.text) if isinstance(e, LogMessage) else None, output_dir=tmp_path)
    assert result.status == "completed", result
    cache_lines = [line for line in logs if line.startswith("feature cache")]
    assert cache_lines[0].startswith("feature cache: on - the output of bert is computed once per split")
    assert "dropout layer(s) act as in evaluation (off)" in cache_lines[0]
    assert any("cache: computed" in line and "train features" in line for line in cache_lines)

    live = prepare(config)  # the full model, no cache: every batch goes through BERT
    live.model.load_state_dict(load_file(str(result.run_dir / "model.safetensors")))
    metrics = {f"test_{k}": v for k, v in evaluate(live, live.test_loader).compute().items()}
    assert metrics.keys() == result.test_metrics.keys()
    for key, value in metrics.items():
        assert result.test_metrics[key] == pytest.approx(value, abs=1e-4), key
