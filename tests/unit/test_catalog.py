"""The curated model catalog: registration, filtering, real metadata, offline availability."""

from __future__ import annotations

import pytest
import torch

from finetune_gui.config import TaskKind
from finetune_gui.core.models import catalog
from finetune_gui.core.models.catalog import CatalogEntry, availability, entries, register


def test_duplicate_registration_raises():
    entry = catalog.get("resnet18")
    with pytest.raises(ValueError, match="already registered"):
        register(entry)


def test_new_entry_registers(monkeypatch):
    monkeypatch.setattr(catalog, "CATALOG", dict(catalog.CATALOG))
    e = CatalogEntry("my-net", "huggingface", (TaskKind.TEXT_CLASSIFICATION,), 1.0, 128, "MIT", "me/my-net", "mine")
    register(e)
    assert catalog.get("my-net") is e
    with pytest.raises(ValueError):
        register(CatalogEntry("other", "keras", (), 1.0, 1, "", "", ""))


def test_required_entries_present():
    names = {e.name for e in entries()}
    for n in [
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "efficientnet_b0",
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        "convnext_tiny",
        "vit_b_16",
        "bert-base-uncased",
        "distilbert-base-uncased",
        "roberta-base",
        "sentence-transformers/all-MiniLM-L6-v2",
        "gpt2",
        "distilgpt2",
        "HuggingFaceTB/SmolLM2-135M",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ]:
        assert n in names


def test_filter_by_task():
    image = entries(TaskKind.IMAGE_CLASSIFICATION)
    lm = entries("causal-lm")
    assert image and all(e.family == "torchvision" for e in image)
    assert {e.name for e in lm} >= {"gpt2", "distilgpt2", "HuggingFaceTB/SmolLM2-135M"}
    assert "bert-base-uncased" not in {e.name for e in lm}


def test_parameter_counts_are_real():
    from torchvision.models import get_model

    with torch.device("meta"):
        n = sum(p.numel() for p in get_model("resnet50").parameters())
    assert catalog.get("resnet50").params_m == pytest.approx(n / 1e6, abs=0.01)
    assert catalog.get("resnet18").params_m == pytest.approx(11.69, abs=0.01)
    assert catalog.get("gpt2").params_m == pytest.approx(124.4, abs=0.1)


def test_availability_follows_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    e = catalog.get("resnet18")
    assert e.source.endswith("resnet18-f37072fd.pth")
    assert availability(e) == "needs-download"
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "resnet18-f37072fd.pth").write_bytes(b"x")
    assert availability(e) == "cached"


def test_availability_follows_the_hf_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path))
    e = catalog.get("distilgpt2")
    assert availability(e) == "needs-download"
    snap = tmp_path / "models--distilgpt2" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    (tmp_path / "models--distilgpt2" / "refs").mkdir()
    (tmp_path / "models--distilgpt2" / "refs" / "main").write_text("abc")
    assert availability(e) == "cached"


def test_local_folder_entry(tmp_path):
    e = CatalogEntry("x", "huggingface", (TaskKind.TEXT_CLASSIFICATION,), 1.0, 64, "MIT", str(tmp_path), "")
    assert availability(e) == "local"
