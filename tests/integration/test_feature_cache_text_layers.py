"""A Hugging Face encoder trained with its last layers (last-n freezing) caches the hidden states entering
the first trainable layer, and trains from them what live passes of the whole model train: the same weights
and metrics when dropout is off (BERT, also memory-mapped, and DistilBERT). Another number of trainable
layers moves the cut, so the cache is computed again. Chosen frozen modules are cut the same way when they
are the embeddings and the first layers; trainable embeddings keep the cache off, with the reason."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from finetune_gui.config import validate_dict
from finetune_gui.core.training.engine import fit
from finetune_gui.core.training.events import LogMessage
from tests.conftest import make_reviews_csv
from tests.factories import tiny_bert_dir


def tiny_distilbert_dir(folder):
    """A 2-layer DistilBERT (dim 32) saved beside the tiny BERT's WordPiece tokenizer."""
    from transformers import DistilBertConfig, DistilBertModel

    folder = tiny_bert_dir(folder, name="tiny-distilbert")
    vocab = len((folder / "vocab.txt").read_text(encoding="utf-8").split())
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=64, pad_token_id=0)
    DistilBertModel(cfg).save_pretrained(folder)
    return folder


def _config(tmp_path, cache: str, last_n: int = 1, epochs: int = 2, ram_mb: int = 2048, model: str = "tiny-bert"):
    csv = tmp_path / "reviews.csv"
    if not csv.exists():
        make_reviews_csv(csv)
        tiny_bert_dir(tmp_path / "bert")
        tiny_distilbert_dir(tmp_path / "bert")
    return validate_dict(
        {
            "task": {"kind": "text-classification"},
            "data": {"path": str(csv), "max_length": 16},
            "model": {
                "name": str(tmp_path / "bert" / model),
                "freeze": "last-n",
                "unfreeze_last_n": last_n,
                "backbone_dropout": 0.0,
            },
            "train": {
                "epochs": epochs,
                "batch_size": 8,
                "lr": 1e-2,
                "seed": 3,
                "feature_cache": cache,
                "feature_cache_ram_mb": ram_mb,
            },
        }
    )


def _fit(config, out):
    logs: list[str] = []
    result = fit(config, lambda e: logs.append(e.text) if isinstance(e, LogMessage) else None, output_dir=out)
    assert result.status == "completed", result
    return result, [line for line in logs if line.startswith("feature cache")]


@pytest.mark.parametrize("ram_mb,held", [(2048, "in memory"), (0, "memory-mapped")])
def test_a_last_n_bert_run_from_cached_hidden_states_equals_live_passes(tmp_path, ram_mb, held):
    cached, lines = _fit(_config(tmp_path, "auto", ram_mb=ram_mb), tmp_path / "runs")
    assert lines[0].startswith(
        "feature cache: on - the hidden states after encoder layer 1 of 2 (kept with the attention mask) "
        "are computed once per split"
    ), lines
    assert any("cache: computed" in line and "train features" in line and held in line for line in lines), lines
    live, lines = _fit(_config(tmp_path, "off"), tmp_path / "live")
    assert lines == ["feature cache: off - train.feature_cache is off"]
    assert cached.test_metrics.keys() == live.test_metrics.keys() and live.test_metrics
    for key, value in live.test_metrics.items():
        assert cached.test_metrics[key] == pytest.approx(value, abs=1e-4), key
    for key, value in live.val_metrics.items():
        assert cached.val_metrics[key] == pytest.approx(value, abs=1e-4), key
    start = load_file(str(tmp_path / "bert" / "tiny-bert" / "model.safetensors"))  # a bare BertModel's names
    mine, theirs = (load_file(str(r.run_dir / "model.safetensors")) for r in (cached, live))
    assert mine.keys() == theirs.keys()
    for name, value in theirs.items():
        assert torch.allclose(mine[name], value, atol=1e-4), name
    for layer, learnt in (
        ("encoder.layer.1.output.dense.weight", True),
        ("encoder.layer.0.output.dense.weight", False),
    ):
        assert torch.equal(mine[f"bert.{layer}"], start[layer]) != learnt, layer  # the trainable layer learnt


def test_another_number_of_trainable_layers_moves_the_cut_and_rebuilds_the_cache(tmp_path):
    runs = tmp_path / "runs"
    _, first = _fit(_config(tmp_path, "auto", last_n=1, epochs=1), runs)
    _, moved = _fit(_config(tmp_path, "auto", last_n=2, epochs=1), runs)
    assert "the hidden states after the embeddings, below encoder layer 1 of 2 (kept with" in moved[0]
    assert any("computing the train features" in line for line in moved), moved
    assert not any("reused" in line for line in moved)
    _, again = _fit(_config(tmp_path, "auto", last_n=1, epochs=1), runs)
    assert any("reused the train features" in line for line in again), again
    assert len(list((runs / ".feature-cache").glob("train-*.features"))) == 2


@pytest.mark.parametrize(
    "frozen,first_line",
    [
        (["bert.embeddings", "bert.encoder.layer.0"], "on - the hidden states after encoder layer 1 of 2"),
        (["bert.encoder.layer.0"], "off - bert.embeddings.word_embeddings.weight trains below the first layer"),
    ],
    ids=["embeddings-and-first-layer", "embeddings-train"],
)
def test_chosen_frozen_modules_are_cut_when_they_are_the_embeddings_and_the_first_layers(tmp_path, frozen, first_line):
    config = _config(tmp_path, "auto", epochs=1).model_dump()
    config["model"].update({"freeze": "modules", "frozen_modules": frozen})
    _, lines = _fit(validate_dict(config), tmp_path / "runs")
    assert lines[0].startswith(f"feature cache: {first_line}"), lines


def test_a_last_n_distilbert_run_from_cached_hidden_states_equals_live_passes(tmp_path):
    cached, lines = _fit(_config(tmp_path, "auto", model="tiny-distilbert"), tmp_path / "runs")
    assert lines[0].startswith("feature cache: on - the hidden states after encoder layer 1 of 2"), lines
    live, _ = _fit(_config(tmp_path, "off", model="tiny-distilbert"), tmp_path / "live")
    mine, theirs = (load_file(str(r.run_dir / "model.safetensors")) for r in (cached, live))
    assert mine.keys() == theirs.keys()
    for name, value in theirs.items():
        assert torch.allclose(mine[name], value, atol=1e-4), name
    start = load_file(str(tmp_path / "bert" / "tiny-distilbert" / "model.safetensors"))  # DistilBertModel's names
    for layer, learnt in (
        ("transformer.layer.1.ffn.lin2.weight", True),
        ("transformer.layer.0.ffn.lin2.weight", False),
    ):
        assert torch.equal(mine[f"distilbert.{layer}"], start[layer]) != learnt, layer
    for key, value in live.test_metrics.items():
        assert cached.test_metrics[key] == pytest.approx(value, abs=1e-4), key
