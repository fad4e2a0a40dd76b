"""Where a model splits into a frozen part, whose output can be computed once, and the part that trains.

Head-only freezing is covered here (frozen prefixes: graph_cut.py for image models, layer_cut.py for Hugging
Face encoders). For a torchvision (or timm) image model the cut is the input of the head layer (for ResNet
the pooled features); the tail is the head. For a Hugging Face sequence classifier the cut
is the base model's output; the tail is the model's own forward with the base model replaced by a replay of
that output. A probe on real samples decides which of the base model's outputs the head reads (BERT: the
pooled output; DistilBERT, RoBERTa: the first token's hidden state) and checks that the tail on them gives
the model's own logits; a head that reads every token is not cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from finetune_gui.config import RunConfig, TaskKind

#: augment settings that draw random numbers before the model sees an image, with the words the log uses
RANDOM_AUGMENTS = (
    ("random_resized_crop", "random crop"),
    ("hflip", "random horizontal flip"),
    ("vflip", "random vertical flip"),
    ("rotation", "random rotation"),
    ("color_jitter", "colour jitter"),
    ("random_erasing", "random erasing"),
    ("mixup_alpha", "MixUp"),
    ("cutmix_alpha", "CutMix"),
)
#: the ones that act on a whole batch (in forward_batch, before the model), not on each sample in the data set
BATCH_MIXERS = ("mixup_alpha", "cutmix_alpha")


def per_sample_augments(config: RunConfig) -> list[str]:
    """The log's words for the random augmentation an image run draws per sample (in its data set), in order."""
    if not config.task.kind.is_image:
        return []
    aug = config.augment
    words = [w for name, w in RANDOM_AUGMENTS if name not in BATCH_MIXERS and getattr(aug, name, 0)]
    if getattr(aug, "auto_augment", "none") not in ("none", "", None):
        words.append(aug.auto_augment)
    return words


def refusal(config: RunConfig, bundle: Any) -> str | None:
    """Why this run cannot train from cached features (a short phrase for the log), or None when it can."""
    mc, aug = config.model, config.augment
    if config.train.feature_cache == "off":
        return "train.feature_cache is off"
    if config.task.kind == TaskKind.CAUSAL_LM:
        return "a language model's head reads every token"
    if bundle.uses_lora:
        return "LoRA adapters train inside the backbone"
    if mc.gradual_unfreeze_every > 0:
        return "gradual unfreezing moves the cut"
    if mc.freeze == "none":
        return "freeze 'none': nothing is frozen"
    if mc.freeze != "head-only" and bundle.kind not in ("vision", "hf-sequence"):
        return f"freeze '{mc.freeze}': {bundle.kind} models are cached with head-only freezing so far"
    if config.task.kind.is_image:
        mixers = [words for name, words in RANDOM_AUGMENTS if name in BATCH_MIXERS and getattr(aug, name, 0)]
        per_sample = per_sample_augments(config)
        copies = config.train.feature_cache_aug_copies
        if mixers:  # they mix the images of a batch: features of a mix are not a mix of features
            because = " (it mixes the images of a batch; augmented copies cannot hold that)" if copies else ""
            return f"{mixers[0]} acts before the cut{because}"
        if per_sample and not copies:
            return f"{per_sample[0]} acts before the cut (set train.feature_cache_aug_copies to extract augmented copies once)"
    trainable_outside = [
        n for n, q in bundle.model.named_parameters() if q.requires_grad and not _under(n, bundle.head)
    ]
    if mc.freeze == "head-only" and trainable_outside:
        return f"{trainable_outside[0]} trains below the head"
    return None


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# ---------------------------------------------------------------- the cut


@dataclass
class Cut:
    """A model's cut: what is captured there, and the module that trains from it."""

    # "head-input" (vision, head-only) | "graph" (vision, a frozen prefix) | "base-output" (Hugging Face,
    # head-only) | "hidden" (Hugging Face encoder, frozen embeddings and first layers: see layer_cut.py)
    kind: str
    where: str  # for the log: "the input of fc"
    tail: nn.Module
    prefix: nn.Module | None = None  # "graph", "hidden": computes the cut's activation from the input
    frozen_modules: list[str] | None = None  # "graph", "hidden": the modules whose state makes the features
    # HF: (output name, how it is kept, its shape per sample); kept: all | first (token) | none | none-seq (zeros)
    fields: list[tuple[str, str, list[int]]] = field(default_factory=list)

    @property
    def is_text(self) -> bool:
        return self.kind in ("base-output", "hidden")

    def describe(self) -> str:
        """What identifies the cut in the cache key."""
        return f"{self.kind}:{self.where}:{self.fields}"


class HeadInputCapture:
    """A forward pre-hook on the head: keeps the head's input of the last forward."""

    def __init__(self, head: nn.Module):
        self.value: torch.Tensor | None = None
        self.handle = head.register_forward_pre_hook(self)

    def __call__(self, module: nn.Module, args: tuple) -> None:
        self.value = args[0]

    def remove(self) -> None:
        self.handle.remove()


class BaseOutputCapture:
    """A forward hook on a Hugging Face base model: keeps its output of the last forward."""

    def __init__(self, base: nn.Module):
        self.value: Any = None
        self.handle = base.register_forward_hook(self)

    def __call__(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.value = output

    def remove(self) -> None:
        self.handle.remove()


class Replay(nn.Module):
    """Stands in for a base model: returns the output it was given, whatever the input."""

    def __init__(self, output: Any):
        super().__init__()
        self.output = output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.output


class ReplayTail(nn.Module):
    """A Hugging Face classifier's forward from cached base-model outputs (`feature_<name>` batch entries)."""

    def __init__(self, model: nn.Module, output_type: type, fields: list[tuple[str, str, list[int]]]):
        super().__init__()
        self.model, self.output_type, self.fields = model, output_type, fields

    def replayed(self, batch: dict[str, torch.Tensor]) -> Any:
        rows, steps = batch["input_ids"].shape[0], batch["input_ids"].shape[1]
        values = {}
        for name, mode, shape in self.fields:
            cached = batch.get(f"feature_{name}")
            if mode == "all":
                values[name] = cached
                continue
            ref = cached if cached is not None else next(v for k, v in batch.items() if k.startswith("feature_"))
            size = (rows, *shape) if mode == "none" else (rows, steps, *shape[1:])
            if mode == "first":
                full = torch.zeros(size, dtype=ref.dtype, device=ref.device)
                full[:, :1] = cached
                values[name] = full
            else:  # never read (the probe showed it): a zero view, not a zeroed batch-sized tensor
                values[name] = torch.zeros((1,) * len(size), dtype=ref.dtype, device=ref.device).expand(size)
        return self.output_type(**values)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **features: Any) -> Any:
        batch = {"input_ids": input_ids, **features}
        return call_with_base(self.model, Replay(self.replayed(batch)), input_ids, attention_mask)


def call_with_base(model: nn.Module, base: nn.Module, input_ids: torch.Tensor, attention_mask: Any) -> Any:
    """The model's forward with its base model swapped for `base` for the call."""
    name = model.base_model_prefix
    real = getattr(model, name)
    setattr(model, name, base)
    try:
        return model(input_ids=input_ids, attention_mask=attention_mask)
    finally:
        setattr(model, name, real)


def vision_cut(bundle: Any) -> Cut | str:
    """The cut of a head-only image model (a string says why there is none)."""
    if len(bundle.head) != 1:
        return f"the head is {len(bundle.head)} modules"
    return Cut("head-input", f"the input of {bundle.head[0]}", bundle.model.get_submodule(bundle.head[0]))


def text_cut(bundle: Any, probe: dict[str, torch.Tensor]) -> Cut | str:
    """The cut of a head-only Hugging Face classifier, found by a probe on a collated batch (eval mode)."""
    model = bundle.model
    prefix = getattr(model, "base_model_prefix", "")
    base = getattr(model, prefix, None) if prefix else None
    if not isinstance(base, nn.Module) or base is model:
        return "the model has no separate base model"
    capture = BaseOutputCapture(base)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            reference = model(input_ids=probe["input_ids"], attention_mask=probe["attention_mask"]).logits
            out = capture.value
            steps = probe["input_ids"].shape[1]
            present = {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}
            chosen = {k: "all" for k in present}
            for name, value in present.items():
                sequence = value.dim() >= 3 and value.shape[1] == steps
                for mode in ("none-seq", "first") if sequence else ("none",):
                    trial = dict(chosen, **{name: mode})
                    if _same(reference, _poisoned_logits(model, type(out), present, trial, probe)):
                        chosen[name] = mode
                        break
                if sequence and chosen[name] == "all":
                    return f"the head reads every token's {name}"
    finally:
        capture.remove()
        model.train(was_training)
    fields = [(k, chosen[k], list(v.shape[1:])) for k, v in present.items()]
    if all(mode.startswith("none") for _, mode, _ in fields):
        return "the head reads none of the base model's outputs"
    return Cut("base-output", f"the output of {prefix}", ReplayTail(model, type(out), fields), fields=fields)


def _poisoned_logits(model: nn.Module, output_type: type, present: dict, modes: dict, probe: dict) -> torch.Tensor:
    """Logits with the parts a cache would not keep set to NaN: unchanged logits mean the head never reads them."""
    values = {}
    for name, v in present.items():
        mode = modes[name]
        v = v.clone()
        if mode.startswith("none"):
            v.fill_(float("nan"))
        elif mode == "first":
            v[:, 1:] = float("nan")
        values[name] = v
    try:
        return call_with_base(model, Replay(output_type(**values)), probe["input_ids"], probe["attention_mask"]).logits
    except Exception:  # noqa: BLE001 - a head that breaks on the trial reads what was taken away
        return torch.full((1,), float("nan"))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.isfinite(b).all()) and torch.allclose(a.float(), b.float(), atol=1e-5)
