"""A new regression head starts at the training targets' mean with small weights, so the first epochs learn the
task instead of the targets' level (found on the brightness demo: R² of -4 after three epochs)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from finetune_gui.core.models.bundle import ModelBundle
from finetune_gui.core.models.head_init import WEIGHT_SCALE, start_regression_head_at_mean


def bundle(outputs: int = 1) -> ModelBundle:
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU()))
    model.add_module("fc", nn.Sequential(nn.Dropout(0.1), nn.Linear(8, outputs)))
    return ModelBundle(model=model, kind="vision", tokenizer=None, image_size=2, head=["fc"])


def test_the_head_answers_the_targets_mean_from_the_start():
    b = bundle()
    before = b.model.fc[1].weight.clone()
    assert start_regression_head_at_mean(b, [0.2, 0.4, 0.6])
    assert b.model.fc[1].bias.tolist() == pytest.approx([0.4])
    assert torch.allclose(b.model.fc[1].weight, before * WEIGHT_SCALE)  # small, not zero: gradients flow
    b.model.eval()
    answers = b.model(torch.randn(16, 3, 2, 2))
    assert (answers - 0.4).abs().max() < 0.05


def test_several_targets_start_at_their_own_means():
    b = bundle(outputs=2)
    assert start_regression_head_at_mean(b, [[0.0, 10.0], [1.0, 20.0]])
    assert b.model.fc[1].bias.tolist() == pytest.approx([0.5, 15.0])


def test_a_head_that_does_not_fit_the_targets_is_left_alone():
    b = bundle(outputs=3)
    before = b.model.fc[1].bias.clone()
    assert not start_regression_head_at_mean(b, [0.1, 0.2])
    assert not start_regression_head_at_mean(bundle(), [])
    assert torch.equal(b.model.fc[1].bias, before)
