"""The layer cut on the real all-MiniLM-L6-v2 with its last 2 layers trainable, on real review snippets of
many lengths: the logits the tail gives from the cached hidden states equal the full model's on the same
batches (eval mode), and the cut's check accepts it. Marked `real` (the weights load in a few seconds)."""

from __future__ import annotations

import pytest
import torch

from finetune_gui.config import validate_dict
from finetune_gui.core.features.cache import attach_feature_cache
from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.prepare import prepare
from tests.real.conftest import write_sentiment_csv

pytestmark = [pytest.mark.real]


def test_minilm_logits_from_cached_hidden_states_equal_the_full_models(tmp_path, minilm_dir):
    config = validate_dict(
        {
            "task": {"kind": "text-classification"},
            "data": {"path": str(write_sentiment_csv(tmp_path / "rt.csv", 24)), "max_length": 64},
            "model": {"name": str(minilm_dir), "freeze": "last-n", "unfreeze_last_n": 2},
            "train": {"batch_size": 8, "seed": 0},
        }
    )
    live = prepare(config)
    logs: list[str] = []
    cached = attach_feature_cache(
        live, tmp_path / "runs", lambda e: logs.append(e.text) if isinstance(e, LogMessage) else None
    )
    assert logs[0].startswith("feature cache: on - the hidden states after encoder layer 4 of 6"), logs
    live.model.eval()
    with torch.no_grad():
        pairs = list(zip(live.val_loader, cached.val_loader, strict=True))
        assert any(int(b["attention_mask"].sum(1).min()) < b["input_ids"].shape[1] for b, _ in pairs)  # padding
        for plain, from_cache in pairs:
            reference = live.model(input_ids=plain["input_ids"], attention_mask=plain["attention_mask"]).logits
            from_cache.pop("labels")
            assert torch.allclose(cached.tail(**from_cache).logits, reference, atol=1e-5)
