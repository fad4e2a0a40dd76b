"""Hugging Face text models through the real build_model → from_pretrained(folder) path."""

from __future__ import annotations

import json

import pytest
import torch

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.errors import ModelLoadError, OfflineError
from finetune_gui.core.models import build_model
from finetune_gui.core.models.freezing import count_params
from tests.factories import tiny_bert_dir, tiny_gpt2_dir, tiny_remote_code_dir, tiny_text_corpus


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return tiny_gpt2_dir(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(autouse=True)
def _no_offline_env(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("FINETUNE_GUI_OFFLINE", raising=False)
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf"))  # an empty cache: nothing is "cached"


def _cfg(task: TaskKind, name: str, **model) -> RunConfig:
    cfg = RunConfig()
    cfg.task.kind = task
    cfg.model.name = name
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return cfg


def _batch(tokenizer, n=3):
    enc = tokenizer(tiny_text_corpus()[:n], padding=True, truncation=True, max_length=16, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def test_tiny_bert_sequence_classification_loads_and_runs(bert_dir):
    bundle = build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(bert_dir)), 4)
    assert bundle.kind == "hf-sequence" and bundle.image_size == 0
    assert bundle.head == ["classifier"]
    assert bundle.blocks == ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1"]
    assert bundle.tokenizer.pad_token is not None
    ids, mask = _batch(bundle.tokenizer)
    assert (ids != bundle.tokenizer.unk_token_id).float().mean() > 0.5  # the vocab really tokenizes the corpus
    out = bundle.model(input_ids=ids, attention_mask=mask)
    assert out.logits.shape == (3, 4)
    assert bundle.model.config.num_labels == 4


def test_relative_folder_is_resolved_against_config_dir(bert_dir):
    cfg = _cfg(TaskKind.TEXT_CLASSIFICATION, bert_dir.name).with_base_dir(bert_dir.parent)
    assert build_model(cfg, 2).model.config.num_labels == 2


def test_text_regression_has_one_output(bert_dir):
    bundle = build_model(_cfg(TaskKind.TEXT_REGRESSION, str(bert_dir)), 5)
    assert bundle.model.config.problem_type == "regression"
    ids, mask = _batch(bundle.tokenizer, 2)
    assert bundle.model(input_ids=ids, attention_mask=mask).logits.shape == (2, 1)


def test_saved_head_with_other_label_count_is_replaced(tmp_path):
    folder = tiny_bert_dir(tmp_path, num_labels=2)
    bundle = build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(folder)), 5)
    assert bundle.model.classifier.out_features == 5


def test_dropout_overrides_reach_the_config(bert_dir):
    cfg = _cfg(TaskKind.TEXT_CLASSIFICATION, str(bert_dir), backbone_dropout=0.25, head_dropout=0.4)
    model = build_model(cfg, 2).model
    assert model.config.hidden_dropout_prob == 0.25
    assert model.config.attention_probs_dropout_prob == 0.25
    assert model.dropout.p == 0.4


def test_tiny_gpt2_causal_lm_gets_pad_token_and_loss(gpt2_dir):
    bundle = build_model(_cfg(TaskKind.CAUSAL_LM, str(gpt2_dir)), 0)
    assert bundle.kind == "hf-causal"
    tok = bundle.tokenizer
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert bundle.model.config.pad_token_id == tok.pad_token_id
    assert bundle.head == ["lm_head"]
    assert bundle.blocks == ["transformer.wte", "transformer.wpe", "transformer.h.0", "transformer.h.1"]
    ids, mask = _batch(tok)
    out = bundle.model(input_ids=ids, attention_mask=mask, labels=ids)
    assert out.logits.shape[:2] == ids.shape and torch.isfinite(out.loss)


def test_gpt2_sequence_classification_pads(gpt2_dir):
    bundle = build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(gpt2_dir)), 3)
    assert bundle.head == ["score"]
    ids, mask = _batch(bundle.tokenizer)  # padded batch needs pad_token_id set in the model config
    assert bundle.model(input_ids=ids, attention_mask=mask).logits.shape == (3, 3)


def test_auto_map_folder_refused_without_trust(tmp_path):
    folder = tiny_remote_code_dir(tmp_path)
    with pytest.raises(ModelLoadError) as info:
        build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(folder)), 2)
    msg = str(info.value)
    assert "modeling_evil.py" in msg and "trust_remote_code" in msg


def test_offline_hub_id_not_cached_raises_offline_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, "bert-base-uncased"), 2)
    msg = str(info.value)
    assert "bert-base-uncased" in msg and "local folder" in msg


def test_connection_error_from_hub_becomes_offline_error(monkeypatch):
    import transformers

    def fail(*a, **k):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", fail)
    with pytest.raises(OfflineError, match="connected machine"):
        build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, "some-org/some-model"), 2)


def test_missing_local_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(tmp_path / "nope")), 2)


def test_image_source_for_text_task_refused(bert_dir):
    with pytest.raises(ModelLoadError, match="Hugging Face"):
        build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(bert_dir), source="torchvision"), 2)


def test_lora_on_bert_reduces_trainable_and_keeps_head(bert_dir):
    full = build_model(_cfg(TaskKind.TEXT_CLASSIFICATION, str(bert_dir)), 3)
    full_trainable, total = count_params(full.model)
    cfg = _cfg(TaskKind.TEXT_CLASSIFICATION, str(bert_dir))
    cfg.model.lora.enabled = True
    cfg.model.lora.r = 2
    bundle = build_model(cfg, 3)
    trainable, _ = count_params(bundle.model)
    assert 0 < trainable < full_trainable / 2
    names = [n for n, p in bundle.model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in names)
    assert any("classifier" in n for n in names)  # head kept trainable (modules_to_save)
    assert bundle.head == ["base_model.model.classifier"]
    assert all(bundle.model.get_submodule(b) is not None for b in bundle.blocks)
    ids, mask = _batch(bundle.tokenizer)
    out = bundle.model(input_ids=ids, attention_mask=mask)
    assert out.logits.shape == (3, 3)
    out.logits.sum().backward()


def test_lora_on_gpt2_causal(gpt2_dir):
    cfg = _cfg(TaskKind.CAUSAL_LM, str(gpt2_dir))
    cfg.model.lora.enabled = True
    bundle = build_model(cfg, 0)
    trainable, total = count_params(bundle.model)
    assert 0 < trainable < total / 4
    ids, mask = _batch(bundle.tokenizer)
    out = bundle.model(input_ids=ids, attention_mask=mask, labels=ids)
    assert torch.isfinite(out.loss)


def test_lora_unknown_target_module(bert_dir):
    from finetune_gui.config import ConfigError

    cfg = _cfg(TaskKind.TEXT_CLASSIFICATION, str(bert_dir))
    cfg.model.lora.enabled = True
    cfg.model.lora.target_modules = ["q_proj"]
    with pytest.raises(ConfigError, match="q_proj"):
        build_model(cfg, 2)


def test_factory_folders_hold_what_from_pretrained_needs(bert_dir, gpt2_dir):
    assert json.loads((bert_dir / "config.json").read_text())["num_hidden_layers"] == 2
    assert (bert_dir / "vocab.txt").is_file()
    assert json.loads((gpt2_dir / "config.json").read_text())["n_layer"] == 2
