"""Freeze strategies, gradual unfreezing, frozen BatchNorm, parameter groups, module tree."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from finetune_gui.config import ConfigError, ModelConfig, RunConfig, TaskKind
from finetune_gui.core.models import build_model
from finetune_gui.core.models.freezing import (
    apply_freeze,
    count_params,
    module_tree,
    param_groups,
    set_frozen_batchnorm_eval,
    unfreeze_next_block,
)
from tests.factories import tiny_bert_dir


@pytest.fixture
def bundle(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FINETUNE_GUI_OFFLINE", "1")
    cfg = RunConfig()
    cfg.data.image_size = 32
    cfg.model.pretrained = False
    return build_model(cfg, 3)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory.mktemp("bert"))


def trainable_tops(model: nn.Module) -> set[str]:
    """Top-level module names (ResNet: conv1, bn1, layer1..4, fc) that have any trainable parameter."""
    return {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}


def _mc(**kw) -> ModelConfig:
    return ModelConfig(**kw)


def test_none_trains_everything(bundle):
    apply_freeze(bundle, _mc(freeze="none"))
    trainable, total = count_params(bundle.model)
    assert trainable == total == sum(p.numel() for p in bundle.model.parameters())


def test_head_only(bundle):
    apply_freeze(bundle, _mc(freeze="head-only"))
    assert trainable_tops(bundle.model) == {"fc"}
    assert count_params(bundle.model)[0] == 512 * 3 + 3


def test_last_n(bundle):
    apply_freeze(bundle, _mc(freeze="last-n", unfreeze_last_n=2))
    assert trainable_tops(bundle.model) == {"fc", "layer4", "layer3"}
    assert all(p.requires_grad for p in bundle.model.layer3.parameters())
    apply_freeze(bundle, _mc(freeze="last-n", unfreeze_last_n=0))
    assert trainable_tops(bundle.model) == {"fc"}
    apply_freeze(bundle, _mc(freeze="last-n", unfreeze_last_n=100))
    assert trainable_tops(bundle.model) == {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"}


def test_modules_strategy_freezes_listed_and_children(bundle):
    apply_freeze(bundle, _mc(freeze="modules", frozen_modules=["conv1", "layer1", "layer2.0"]))
    frozen = {n for n, p in bundle.model.named_parameters() if not p.requires_grad}
    assert "conv1.weight" in frozen and "layer1.1.conv2.weight" in frozen and "layer2.0.bn1.bias" in frozen
    assert "layer2.1.conv1.weight" not in frozen and "bn1.weight" not in frozen and "fc.weight" not in frozen


def test_modules_strategy_does_not_match_name_prefixes_without_dot(bundle):
    apply_freeze(bundle, _mc(freeze="modules", frozen_modules=["layer1"]))
    # "layer1" must not freeze "layer10..." style siblings; here: layer2..4 stay trainable
    assert trainable_tops(bundle.model) == {"conv1", "bn1", "layer2", "layer3", "layer4", "fc"}


def test_unknown_module_name_is_a_config_error(bundle):
    with pytest.raises(ConfigError) as info:
        apply_freeze(bundle, _mc(freeze="modules", frozen_modules=["layer9", "conv1"]))
    assert info.value.problems[0].startswith("model.frozen_modules: no module named 'layer9'")
    assert len(info.value.problems) == 1


def test_gradual_unfreezing_goes_from_the_top(bundle):
    apply_freeze(bundle, _mc(freeze="head-only"))
    order = []
    while (name := unfreeze_next_block(bundle)) is not None:
        order.append(name)
    assert order == ["layer4", "layer3", "layer2", "layer1", "bn1", "conv1"]
    assert count_params(bundle.model)[0] == count_params(bundle.model)[1]


def test_frozen_batchnorm_goes_to_eval(bundle):
    apply_freeze(bundle, _mc(freeze="last-n", unfreeze_last_n=1))
    bundle.model.train()
    switched = set_frozen_batchnorm_eval(bundle.model)
    assert switched > 0
    assert not bundle.model.bn1.training and not bundle.model.layer1[0].bn1.training
    assert bundle.model.layer4[0].bn1.training  # trainable BN keeps learning its statistics
    before = bundle.model.bn1.running_mean.clone()
    bundle.model(torch.randn(2, 3, 32, 32))
    assert torch.equal(before, bundle.model.bn1.running_mean)


def test_param_groups_lrs_and_decay(bundle):
    apply_freeze(bundle, _mc(freeze="last-n", unfreeze_last_n=1))
    groups = param_groups(bundle, lr=1e-2, backbone_lr_mult=0.1, weight_decay=0.05)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"head", "head_no_decay", "backbone", "backbone_no_decay"}
    assert by_name["head"]["lr"] == 1e-2 and by_name["head"]["weight_decay"] == 0.05
    assert by_name["head_no_decay"]["weight_decay"] == 0.0
    assert by_name["backbone"]["lr"] == pytest.approx(1e-3) and by_name["backbone_no_decay"]["weight_decay"] == 0.0
    assert by_name["head"]["params"] == [bundle.model.fc.weight]
    assert all(p.ndim == 1 for p in by_name["backbone_no_decay"]["params"])
    in_groups = {id(p) for g in groups for p in g["params"]}
    trainable = {id(p) for p in bundle.model.parameters() if p.requires_grad}
    assert in_groups == trainable
    torch.optim.AdamW(groups)  # usable as is


def test_param_groups_head_only_has_no_backbone_group(bundle):
    apply_freeze(bundle, _mc(freeze="head-only"))
    assert {g["name"] for g in param_groups(bundle, 1e-3, 0.5, 0.01)} == {"head", "head_no_decay"}


def test_module_tree_counts(bundle):
    apply_freeze(bundle, _mc(freeze="head-only"))
    root = module_tree(bundle.model)
    total = sum(p.numel() for p in bundle.model.parameters())
    assert root.type_name == "ResNet" and root.num_params == total
    assert root.trainable_params == 512 * 3 + 3
    children = {c.name: c for c in root.children}
    assert children["fc"].trainable_params == children["fc"].num_params == 1539
    assert children["layer1"].frozen and children["layer1"].children[0].name == "layer1.0"
    assert sum(c.num_params for c in root.children) == total


def test_bert_last_n_includes_the_pooler(bert_dir):
    cfg = RunConfig()
    cfg.task.kind = TaskKind.TEXT_CLASSIFICATION
    cfg.model.name = str(bert_dir)
    b = build_model(cfg, 2)
    apply_freeze(b, _mc(freeze="last-n", unfreeze_last_n=1))
    trainable = {n for n, p in b.model.named_parameters() if p.requires_grad}
    assert any(n.startswith("bert.encoder.layer.1.") for n in trainable)
    assert not any(n.startswith("bert.encoder.layer.0.") for n in trainable)
    assert "bert.pooler.dense.weight" in trainable and "classifier.weight" in trainable
    assert "bert.embeddings.word_embeddings.weight" not in trainable


def test_lora_keeps_adapters_trainable_under_freeze(bert_dir):
    cfg = RunConfig()
    cfg.task.kind = TaskKind.TEXT_CLASSIFICATION
    cfg.model.name = str(bert_dir)
    cfg.model.lora.enabled = True
    b = build_model(cfg, 2)
    before = count_params(b.model)
    apply_freeze(b, cfg.model)  # default head-only must not freeze the adapters
    assert count_params(b.model) == before
    groups = param_groups(b, 1e-3, 0.1, 0.01)
    assert all(g["lr"] == 1e-3 for g in groups)
    assert unfreeze_next_block(b) is None
