"""The cut of a Hugging Face encoder whose embeddings and first k layers are frozen (last-n freezing, or chosen
modules that leave those frozen): the hidden states entering layer k, one [T, H] tensor per sample.

Both halves are the model's own forward with parts of its base model swapped for the call. The prefix runs
with the layer list cut to its first k layers and keeps the base model's last hidden state (padding positions
set to zero, so what is stored depends on the sample only, not on the batch it was computed in). The tail runs
with the embeddings replaced by a replay of the cached states and the layer list by the layers above the cut:
the base model still builds the 4-D attention mask with its own helper from the batch's attention mask, and
the pooler (or first-token logic) and classifier run as in the full model. Both share the model's modules, so
the optimiser, checkpoints and train/eval modes act on them as on the model; dropout in the layers above the
cut stays active in training.

Covered: BERT (MiniLM), DistilBERT and RoBERTa encoders. The cut is checked on two real samples of different
lengths, each computed alone and padded together: the tail on them must give the model's own logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

#: model types whose base model is embeddings -> a list of layers -> (pooler): the layers read only the hidden
#: states and the mask the base model builds from the batch
LAYOUTS = ("bert", "distilbert", "roberta")


@dataclass(frozen=True)
class EncoderLayout:
    """Where an encoder's parts are: names as in named_modules."""

    base: str  # "bert"
    embeddings: str  # "bert.embeddings"
    layer_list: str  # "bert.encoder.layer"
    count: int  # layers in the list

    def layer(self, i: int) -> str:
        return f"{self.layer_list}.{i}"


def encoder_layout(model: nn.Module, blocks: list[str]) -> EncoderLayout | str:
    """The encoder's layout from the bundle's blocks (embeddings first, then the layers); a string says why the
    model is not covered."""
    kind = getattr(getattr(model, "config", None), "model_type", "") or type(model).__name__
    if kind not in LAYOUTS:
        return f"the layer cut covers BERT, DistilBERT and RoBERTa encoders so far (this model is {kind})"
    base = getattr(model, "base_model_prefix", "")
    layers = [b for b in blocks if b.rpartition(".")[2].isdigit()]
    before = [b for b in blocks if b not in layers]
    if not base or not layers or before != [f"{base}.embeddings"]:
        return f"its base model is not embeddings followed by a list of layers ({', '.join(blocks[:3])}, ...)"
    layer_list = layers[0].rpartition(".")[0]
    if [b.rpartition(".")[0] for b in layers] != [layer_list] * len(layers):
        return "its layers are not one list"
    return EncoderLayout(base, before[0], layer_list, len(layers))


def first_trainable_layer(model: nn.Module, layout: EncoderLayout) -> int | str:
    """k: the index of the first layer with a trainable parameter (the layer count when none trains); a string
    when a parameter below the layers trains."""
    trainable = [n for n, q in model.named_parameters() if q.requires_grad]
    below = [n for n in trainable if n.startswith(layout.embeddings + ".")]
    if below:
        return f"{below[0]} trains below the first layer"
    for i in range(layout.count):
        if any(n.startswith(layout.layer(i) + ".") for n in trainable):
            return i
    return layout.count


def where_words(layout: EncoderLayout, k: int) -> str:
    """The cut for the log: 'the hidden states after encoder layer 4 of 6'."""
    if k == 0:
        return f"the hidden states after the embeddings, below encoder layer 1 of {layout.count}"
    return f"the hidden states after encoder layer {k} of {layout.count}"


class Replay(nn.Module):
    """Stands in for the embeddings: returns the hidden states it was given, whatever the input."""

    def __init__(self, states: torch.Tensor):
        super().__init__()
        self.states = states

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.states


@contextmanager
def swapped(model: nn.Module, layout: EncoderLayout, keep: slice, states: torch.Tensor | None) -> Iterator[None]:
    """For the block: the layer list holds only `layers[keep]`; with `states`, the embeddings return them."""
    owner_name, _, list_attr = layout.layer_list.rpartition(".")
    owner = model.get_submodule(owner_name)
    layers = getattr(owner, list_attr)
    base = model.get_submodule(layout.base)
    embeddings = base.embeddings
    setattr(owner, list_attr, nn.ModuleList(list(layers)[keep]))
    if states is not None:
        base.embeddings = Replay(states)
    try:
        yield
    finally:
        setattr(owner, list_attr, layers)
        base.embeddings = embeddings


class LayerPrefix(nn.Module):
    """The frozen part: input ids and mask -> the hidden states after layer k-1, zero at padding positions."""

    def __init__(self, model: nn.Module, layout: EncoderLayout, k: int):
        super().__init__()
        self.model, self.layout, self.k = model, layout, k

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        base = self.model.get_submodule(self.layout.base)
        seen: dict[str, Any] = {}
        handle = base.register_forward_hook(lambda m, a, out: seen.setdefault("out", out))
        try:
            with swapped(self.model, self.layout, slice(0, self.k), None):
                self.model(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            handle.remove()
        out = seen["out"]
        states = out["last_hidden_state"] if isinstance(out, dict) else out[0]
        return states * attention_mask.unsqueeze(-1).to(states.dtype)


class LayerTail(nn.Module):
    """The model's forward from the hidden states at the cut (`feature_hidden`, [B, T, H]) and the batch's mask."""

    def __init__(self, model: nn.Module, layout: EncoderLayout, k: int):
        super().__init__()
        self.model, self.layout, self.k = model, layout, k

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, feature_hidden: torch.Tensor) -> Any:
        with swapped(self.model, self.layout, slice(self.k, None), feature_hidden):
            return self.model(input_ids=input_ids, attention_mask=attention_mask)


@dataclass
class LayerCut:
    """An encoder split at layer k."""

    layout: EncoderLayout
    k: int
    prefix: LayerPrefix
    tail: LayerTail

    @property
    def where(self) -> str:
        return where_words(self.layout, self.k)

    @property
    def frozen_modules(self) -> list[str]:
        """The modules whose weights make the cached states."""
        return [self.layout.embeddings, *(self.layout.layer(i) for i in range(self.k))]


def layer_cut(model: nn.Module, blocks: list[str]) -> LayerCut | str:
    """The cut below the first trainable layer of a Hugging Face encoder (a string says why there is none)."""
    layout = encoder_layout(model, blocks)
    if isinstance(layout, str):
        return layout
    k = first_trainable_layer(model, layout)
    if isinstance(k, str):
        return k
    return LayerCut(layout, k, LayerPrefix(model, layout, k), LayerTail(model, layout, k))


def stored_bytes(splits: list[Any], hidden: int, itemsize: int = 4) -> int:
    """What the cached hidden states of these text splits take: samples x longest sample x hidden x itemsize."""
    total = 0
    for split in splits:
        ids = getattr(split, "input_ids", None) or []
        total += len(ids) * max((len(x) for x in ids), default=0) * hidden * itemsize
    return total


def differing_samples(lengths: list[int]) -> list[int]:
    """Two sample indices, the second the one whose length differs most from the first's (so padding shows)."""
    if len(lengths) < 2:
        return list(range(len(lengths)))
    other = max(range(1, len(lengths)), key=lambda i: abs(lengths[i] - lengths[0]))
    return [0, other]


def tail_matches_model(cut: LayerCut, model: nn.Module, batch: dict[str, torch.Tensor]) -> bool:
    """In eval mode: the hidden states of each sample of a collated, right-padded batch computed alone, then
    zero-padded together, give through the tail the model's own logits on the padded batch."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            steps = batch["input_ids"].shape[1]
            parts = []
            for row in range(batch["input_ids"].shape[0]):
                n = int(batch["attention_mask"][row].sum())
                alone = cut.prefix(batch["input_ids"][row : row + 1, :n], batch["attention_mask"][row : row + 1, :n])
                parts.append(nn.functional.pad(alone, (0, 0, 0, steps - n)))
            replayed = cut.tail(batch["input_ids"], batch["attention_mask"], torch.cat(parts)).logits
            reference = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    finally:
        model.train(was_training)
    return replayed.shape == reference.shape and torch.allclose(replayed.float(), reference.float(), atol=1e-5)
