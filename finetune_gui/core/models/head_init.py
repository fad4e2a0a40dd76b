"""How a new regression head starts: at the training targets' mean, with small weights.

A freshly initialised linear head answers values of the features' scale (roughly ±0.5 for a 512-wide ResNet
head) whatever the targets' scale, so a regression on targets such as brightness in 0-1 (variance ~0.01) starts
with a loss 30× the targets' variance and spends its first epochs only finding their level; with few steps it
ends worse than always answering the mean. Starting from the mean is the usual remedy (fastai's y_range and
"init the last bias to the mean" serve the same end).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from finetune_gui.core.models.bundle import ModelBundle

#: the head's weights keep their random directions at this share of their size: small, not zero, so the
#: backbone's gradients flow from the first step
WEIGHT_SCALE = 0.01


def last_head_linear(bundle: ModelBundle) -> nn.Linear | None:
    """The last nn.Linear inside the bundle's head modules, or None when the head has none."""
    modules = dict(bundle.model.named_modules())
    found = None
    for name in bundle.head:
        head = modules.get(name)
        if head is None:
            continue
        for m in head.modules():  # the head itself first, then what it holds, in order
            if isinstance(m, nn.Linear):
                found = m
    return found


@torch.no_grad()
def start_regression_head_at_mean(bundle: ModelBundle, targets: Sequence) -> bool:
    """Set the head's bias to the targets' mean (per output) and shrink its weights; False if there is no such head."""
    head = last_head_linear(bundle)
    values = torch.as_tensor(list(targets), dtype=torch.float32)
    if head is None or head.bias is None or len(values) == 0:
        return False
    mean = values.reshape(len(values), -1).mean(dim=0)
    if mean.numel() != head.out_features:
        return False
    head.weight.mul_(WEIGHT_SCALE)
    head.bias.copy_(mean.to(head.bias.dtype))
    return True
