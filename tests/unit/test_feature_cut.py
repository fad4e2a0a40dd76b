"""Where a model is cut for the feature cache, and when it is not: the probe finds which base-model outputs a
Hugging Face head reads, the tail rebuilt from them gives the model's own logits, and every setting that puts
something random or trainable below the cut turns the cache off with a reason."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from finetune_gui.config import validate_dict
from finetune_gui.core.features.cut import refusal, text_cut
from finetune_gui.core.features.graph_cut import graph_cut

transformers = pytest.importorskip("transformers")


def _probe(pad: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 60, (3, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[2, 5:], mask[2, 5:] = pad, 0  # one padded row
    return {"input_ids": ids, "attention_mask": mask}


def _bert():
    cfg = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, num_labels=3)  # fmt: skip
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(cfg)


def _distilbert():
    cfg = transformers.DistilBertConfig(vocab_size=64, dim=16, n_layers=1, n_heads=2, hidden_dim=32, num_labels=3)
    torch.manual_seed(0)
    return transformers.DistilBertForSequenceClassification(cfg)


def _gpt2():
    cfg = transformers.GPT2Config(vocab_size=64, n_embd=16, n_layer=1, n_head=2, num_labels=3, pad_token_id=0)
    torch.manual_seed(0)
    return transformers.GPT2ForSequenceClassification(cfg)


def _replayed_logits(model, cut, probe):
    """The tail's logits from what the cache would keep of the base model's output."""
    out = {}
    model.base_model.register_forward_hook(lambda m, a, o: out.setdefault("o", o))
    model(**probe)
    batch = dict(probe)
    for name, mode, _ in cut.fields:
        value = out["o"][name]
        if mode == "all":
            batch[f"feature_{name}"] = value
        elif mode == "first":
            batch[f"feature_{name}"] = value[:, :1]
    return cut.tail(**batch).logits


def test_bert_head_reads_only_the_pooled_output_and_the_tail_gives_the_same_logits():
    model = _bert().eval()
    cut = text_cut(SimpleNamespace(model=model), _probe())
    assert not isinstance(cut, str), cut
    modes = {name: mode for name, mode, _ in cut.fields}
    assert modes == {"last_hidden_state": "none-seq", "pooler_output": "all"}
    with torch.no_grad():
        assert torch.allclose(_replayed_logits(model, cut, _probe()), model(**_probe()).logits, atol=1e-6)


def test_distilbert_head_reads_the_first_token_only():
    model = _distilbert().eval()
    cut = text_cut(SimpleNamespace(model=model), _probe())
    assert not isinstance(cut, str), cut
    assert [(n, m) for n, m, _ in cut.fields] == [("last_hidden_state", "first")]
    with torch.no_grad():
        assert torch.allclose(_replayed_logits(model, cut, _probe()), model(**_probe()).logits, atol=1e-6)


def test_a_head_that_reads_the_last_token_is_not_cached():
    cut = text_cut(SimpleNamespace(model=_gpt2().eval()), _probe())
    assert cut == "the head reads every token's last_hidden_state"


def test_the_probe_leaves_the_model_as_it_found_it():
    model = _bert().train()
    base = model.bert
    text_cut(SimpleNamespace(model=model), _probe())
    assert model.training and model.bert is base and not model.bert._forward_hooks


def _config(**sections):
    base = {
        "task": {"kind": "image-classification"},
        "data": {"path": "images"},
        "model": {"name": "resnet18", "freeze": "head-only"},
        "augment": {"random_resized_crop": False, "hflip": 0.0},
    }
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    return validate_dict(base)


def _vision_bundle():
    model = torch.nn.Sequential()
    model.add_module("body", torch.nn.Linear(4, 4))
    model.add_module("fc", torch.nn.Linear(4, 2))
    model.body.requires_grad_(False)
    return SimpleNamespace(model=model, head=["fc"], uses_lora=False, kind="vision")


KNOB = "(set train.feature_cache_aug_copies to extract augmented copies once)"


@pytest.mark.parametrize(
    "sections,reason",
    [
        ({}, None),
        ({"train": {"feature_cache": "off"}}, "train.feature_cache is off"),
        ({"augment": {"random_resized_crop": True}}, f"random crop acts before the cut {KNOB}"),
        ({"augment": {"hflip": 0.5}}, f"random horizontal flip acts before the cut {KNOB}"),
        ({"augment": {"color_jitter": 0.2}}, f"colour jitter acts before the cut {KNOB}"),
        ({"augment": {"mixup_alpha": 0.2}}, "MixUp acts before the cut"),
        ({"augment": {"hflip": 0.5, "cutmix_alpha": 1.0}}, "CutMix acts before the cut"),  # copies would not help
        ({"augment": {"auto_augment": "randaugment"}}, f"randaugment acts before the cut {KNOB}"),
        ({"augment": {"hflip": 0.5, "auto_augment": "randaugment"}, "train": {"feature_cache_aug_copies": 2}}, None),
        (
            {"augment": {"hflip": 0.5, "mixup_alpha": 0.2}, "train": {"feature_cache_aug_copies": 2}},
            "MixUp acts before the cut (it mixes the images of a batch; augmented copies cannot hold that)",
        ),
        ({"model": {"gradual_unfreeze_every": 1}}, "gradual unfreezing moves the cut"),
        ({"model": {"freeze": "last-n"}}, None),  # an image model's frozen prefix is cut on its graph
        ({"model": {"freeze": "none"}}, "freeze 'none': nothing is frozen"),
    ],
)
def test_the_cache_is_used_only_when_nothing_random_or_trainable_acts_below_the_cut(sections, reason):
    assert refusal(_config(**sections), _vision_bundle()) == reason


def test_a_trainable_layer_below_the_head_turns_the_cache_off():
    bundle = _vision_bundle()
    bundle.model.body.weight.requires_grad_(True)
    assert refusal(_config(), bundle) == "body.weight trains below the head"


def test_last_n_freezing_of_a_text_classifier_goes_on_to_the_layer_cut():
    bundle = SimpleNamespace(model=_bert(), head=["classifier"], uses_lora=False, kind="hf-sequence")
    config = _config(task={"kind": "text-classification"}, model={"freeze": "last-n"})
    assert refusal(config, bundle) is None  # layer_cut.py decides, on the model's structure


def test_a_resnet_with_its_last_stage_training_is_cut_below_that_stage():
    import torchvision

    model = torchvision.models.resnet18(num_classes=3).eval()
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)
    model.fc.requires_grad_(True)
    cut = graph_cut(model)
    assert not isinstance(cut, str), cut
    assert cut.where == "layer3_1_relu_1"
    assert "layer3.1.conv2" in cut.frozen_modules and not any(
        m.startswith(("layer4", "fc")) for m in cut.frozen_modules
    )
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(cut.tail(cut.prefix(x)), model(x))
    assert cut.tail.get_submodule("layer4.0.conv1").weight is model.layer4[0].conv1.weight  # trains the model's own


def test_a_skip_connection_across_the_cut_means_no_cut():
    class Skip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)

        def forward(self, x):
            return self.b(self.a(x)) + x

    model = Skip()
    model.a.requires_grad_(False)
    assert graph_cut(model) == "2 activations cross the cut (a skip connection)"
