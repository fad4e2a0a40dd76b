"""The freeze plan worked out from the module tree alone (what the Model page shows) matches apply_freeze."""

from __future__ import annotations

import pytest

from finetune_gui.config import ModelConfig, RunConfig, TaskKind
from finetune_gui.core.models import build_model
from finetune_gui.core.models.freezing import (
    apply_freeze,
    frozen_modules_for,
    module_tree,
    own_params,
    planned_trainable,
)
from tests.factories import tiny_bert_dir

STRATEGIES = [
    {"freeze": "none"},
    {"freeze": "head-only"},
    {"freeze": "last-n", "unfreeze_last_n": 0},
    {"freeze": "last-n", "unfreeze_last_n": 1},
    {"freeze": "last-n", "unfreeze_last_n": 2},
    {"freeze": "last-n", "unfreeze_last_n": 50},
    {"freeze": "modules", "frozen_modules": []},
]


def _vision(tmp_path, monkeypatch, name: str):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = RunConfig()
    cfg.data.image_size = 32
    cfg.model.name = name
    cfg.model.pretrained = False
    return build_model(cfg, 3)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert_dir(tmp_path_factory.mktemp("bert"))


def _bert(bert_dir, lora: bool = False):
    cfg = RunConfig()
    cfg.task.kind = TaskKind.TEXT_CLASSIFICATION
    cfg.model.name = str(bert_dir)
    cfg.model.lora.enabled = lora
    return build_model(cfg, 2)


def _actual(bundle, mc: ModelConfig) -> dict[str, int]:
    apply_freeze(bundle, mc)
    return {n.name: n.trainable_params for n in module_tree(bundle.model).walk()}


def _plan(bundle, tree, mc: ModelConfig, lora: bool = False) -> dict[str, int]:
    return planned_trainable(tree, mc, bundle.head, bundle.blocks, lora=lora)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_plan_matches_apply_freeze_for_vision_models(tmp_path, monkeypatch, name):
    bundle = _vision(tmp_path, monkeypatch, name)
    tree = module_tree(bundle.model)  # fresh: everything trainable, as the GUI receives it
    first_block = bundle.blocks[0]
    for kw in [*STRATEGIES, {"freeze": "modules", "frozen_modules": [first_block, bundle.head[0]]}]:
        mc = ModelConfig(**kw)
        assert _plan(bundle, tree, mc) == _actual(bundle, mc), kw


def test_plan_matches_apply_freeze_for_bert_including_the_pooler_tail(bert_dir):
    bundle = _bert(bert_dir)
    tree = module_tree(bundle.model)
    for kw in [*STRATEGIES, {"freeze": "modules", "frozen_modules": ["bert.embeddings", "bert.encoder.layer.0"]}]:
        mc = ModelConfig(**kw)
        assert _plan(bundle, tree, mc) == _actual(bundle, mc), kw
    plan = _plan(bundle, tree, ModelConfig(freeze="last-n", unfreeze_last_n=1))
    nodes = {n.name: n for n in tree.walk()}
    assert plan["bert.pooler"] == nodes["bert.pooler"].num_params > 0  # the tail after the last block trains
    assert plan["bert.encoder.layer.0"] == 0


def test_plan_with_lora_keeps_peft_choice_and_applies_only_the_module_list(bert_dir):
    bundle = _bert(bert_dir, lora=True)
    tree = module_tree(bundle.model)  # peft has frozen the base weights already
    head_only = ModelConfig(freeze="head-only")
    assert _plan(bundle, tree, head_only, lora=True) == _actual(bundle, head_only)
    layer0 = "base_model.model.bert.encoder.layer.0"
    modules = ModelConfig(freeze="modules", frozen_modules=[layer0])
    plan = _plan(bundle, tree, modules, lora=True)
    assert plan == _actual(bundle, modules)
    assert plan[layer0] == 0 and plan[""] > 0


def test_unknown_frozen_module_names_are_ignored_by_the_plan(tmp_path, monkeypatch):
    bundle = _vision(tmp_path, monkeypatch, "resnet18")
    tree = module_tree(bundle.model)
    plan = _plan(bundle, tree, ModelConfig(freeze="modules", frozen_modules=["nosuch"]))
    assert plan[""] == tree.num_params


def test_frozen_modules_for_lists_whole_subtrees_by_their_top_module(tmp_path, monkeypatch):
    bundle = _vision(tmp_path, monkeypatch, "resnet18")
    tree = module_tree(bundle.model)
    nodes = {n.name: n for n in tree.walk()}
    under = lambda prefix: {n.name for n in nodes[prefix].walk()}  # noqa: E731
    assert frozen_modules_for(tree, set()) == []
    assert frozen_modules_for(tree, under("layer1")) == ["layer1"]
    # freezing both blocks of layer2 one by one is written as layer2; one block alone stays a block
    assert frozen_modules_for(tree, under("layer2.0") | under("layer2.1")) == ["layer2"]
    assert frozen_modules_for(tree, under("layer2.1")) == ["layer2.1"]
    # nodes without parameters of their own (containers, ReLU) do not stop a subtree from being listed whole
    assert frozen_modules_for(tree, under("layer3") - {"layer3", "layer3.0"}) == ["layer3"]


def test_frozen_modules_for_round_trips_through_the_plan(tmp_path, monkeypatch):
    bundle = _vision(tmp_path, monkeypatch, "resnet18")
    tree = module_tree(bundle.model)
    nodes = list(tree.walk())
    head_only = _plan(bundle, tree, ModelConfig(freeze="head-only"))
    own_frozen = {
        n.name
        for n in nodes
        if own_params(n) > 0 and head_only[n.name] - sum(head_only[c.name] for c in n.children) == 0
    }
    listed = frozen_modules_for(tree, own_frozen)
    assert "fc" not in listed and "layer4" in listed
    assert _plan(bundle, tree, ModelConfig(freeze="modules", frozen_modules=listed)) == head_only
