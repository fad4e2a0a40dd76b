"""Case 5 with the feature cache on a text encoder: a last-n or head-only BERT run (dropout active above the
cut) stopped mid-epoch (step 10 of 12: the second of epoch 3) and resumed trains from the cached features
exactly as one never interrupted, ends with bit-identical weights, and reuses the cache files instead of
computing them again."""

from __future__ import annotations

import pytest

from finetune_gui.config import validate_dict
from finetune_gui.core.training.engine import fit, resume
from finetune_gui.core.training.events import RunControl
from tests.conftest import make_reviews_csv
from tests.factories import tiny_bert_dir
from tests.faults.helpers import stop_at_step, weights_equal


@pytest.mark.parametrize(
    "freeze,cut,dropped",
    [("last-n", "the hidden states after encoder layer 1 of 2", 4), ("head-only", "the output of bert", 7)],
)
def test_a_resumed_text_run_with_the_cache_and_dropout_equals_an_uninterrupted_one(tmp_path, freeze, cut, dropped):
    config = validate_dict(
        {
            "task": {"kind": "text-classification"},
            "data": {"path": str(make_reviews_csv(tmp_path / "reviews.csv")), "max_length": 16},
            "model": {"name": str(tiny_bert_dir(tmp_path / "bert")), "freeze": freeze, "unfreeze_last_n": 1},
            "train": {"epochs": 3, "batch_size": 8, "lr": 1e-3, "seed": 5},
        }
    )
    logs: list[str] = []
    straight = fit(config, stop_at_step(RunControl(), None, logs), output_dir=tmp_path / "straight")
    assert straight.status == "completed"
    assert logs[0].startswith(f"feature cache: on - {cut}"), logs
    assert logs[0].endswith(f"; the frozen part's {dropped} dropout layer(s) act as in evaluation (off)"), logs

    control, logs = RunControl(), []
    stopped = fit(config, stop_at_step(control, 10, logs), control, output_dir=tmp_path / "interrupted")
    assert stopped.status == "stopped"
    logs.clear()
    resumed = resume(stopped.run_dir, stop_at_step(RunControl(), None, logs))
    assert resumed.status == "completed"
    assert any("cache: reused the train features" in line for line in logs), logs
    assert weights_equal(straight.run_dir / "model.safetensors", resumed.run_dir / "model.safetensors")
    assert resumed.test_metrics == straight.test_metrics
