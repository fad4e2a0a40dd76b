"""What gets exported: a run's trained model as a tensors-in, tensor-out module, with its real validation samples.

`load_source(run_dir)` reuses core.inference (the run's own model rebuilding, weights and preprocessing) and adds
what export needs: a wrapper with fixed input names (images → logits; input_ids, attention_mask → logits), the
LoRA adapters merged into the weights, the preprocessing as JSON, and the verification batches.

Verification batches, taken from the run's validation split (the test split, then train, if it is empty):
  images     batch 1 = the first sample, batch N = the first N (N = 8, fewer if the split is smaller);
  text       batch 1 = the first sample at its own length, batch N = N samples right-padded to data.max_length,
             so two sequence lengths and real padding are checked;
  causal LM  batch 1 = the first half of the first block (a prompt-like prefix), batch N = N whole blocks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from finetune_gui.config import RunConfig, TaskKind
from finetune_gui.core.errors import DataError, ExportError, RunStateError

VERIFY_BATCH = 8
IMAGE_INPUTS = ("images",)
TEXT_INPUTS = ("input_ids", "attention_mask")


class ImageLogits(nn.Module):
    """images (N, 3, H, W) float32, normalised → logits (N, outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)


class TextLogits(nn.Module):
    """input_ids, attention_mask (N, T) int64 → logits: (N, outputs) for classifiers, (N, T, vocab) for LMs.

    A causal LM is exported as its logits graph only (no key/value cache): generation stays in Python.
    """

    def __init__(self, model: nn.Module, causal: bool):
        super().__init__()
        self.model = model
        self.causal = causal

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


@dataclass
class ExportSource:
    """A run's trained model ready to export, and what the export folder says about it."""

    run_dir: Path
    config: RunConfig
    task: TaskKind
    labels: list[str]
    kind: str  # "vision" | "hf-sequence" | "hf-causal"
    model: nn.Module  # the deployable model itself (LoRA merged): what safetensors and hf save
    eager: nn.Module  # the trained model as it was trained (LoRA adapters unmerged), wrapped
    deployable: nn.Module  # `model` wrapped: what torchscript, onnx and pt2 export, and the artefacts' reference
    tokenizer: Any
    input_names: tuple[str, ...]
    batches: list[tuple[torch.Tensor, ...]]  # the verification batches (batch 1, batch N)
    split: str  # the split the samples came from
    weights_source: str  # which of the run's files the weights came from
    description: str  # the backbone in words
    preprocessing: dict[str, Any] = field(default_factory=dict)
    lora_merged: bool = False
    dataset: Any = None  # the split the batches came from, for checks on more samples (int8 agreement)
    collate: Any = None

    @property
    def batch_sizes(self) -> list[int]:
        return [int(b[0].shape[0]) for b in self.batches]

    @property
    def example(self) -> tuple[torch.Tensor, ...]:
        """The input the graph exporters trace: the largest batch, at least 2 rows (a batch of 1 would fix the
        batch size at 1 in the graph)."""
        big = self.batches[-1]
        if big[0].shape[0] >= 2:
            return big
        return tuple(torch.cat([t, t]) for t in big)

    def dynamic_shapes(self) -> dict[str, dict[int, Any]]:
        """Dynamic axes for torch.export / the ONNX dynamo exporter: batch, and sequence length for text."""
        from torch.export import Dim

        batch = Dim("batch", min=1, max=4096)
        if self.kind == "vision":
            return {"images": {0: batch}}
        seq = Dim("seq", min=1, max=max(2, self.max_positions))
        return {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}

    @property
    def max_positions(self) -> int:
        cfg = getattr(self.model, "config", None)
        for attr in ("max_position_embeddings", "n_positions", "max_seq_len"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return int(self.config.data.max_length)

    def samples_note(self) -> str:
        sizes = " and ".join(str(b) for b in self.batch_sizes)
        return f"real samples of the {self.split} split, batch sizes {sizes}"


def _merged(model: nn.Module) -> tuple[nn.Module, bool]:
    """A copy of a peft model with its LoRA adapters merged into the base weights, or the model itself."""
    if not hasattr(model, "peft_config"):
        return model, False
    try:
        return copy.deepcopy(model).merge_and_unload(), True
    except Exception as e:  # noqa: BLE001 - peft raises many kinds; the user needs the reason
        raise ExportError(
            f"cannot merge the run's LoRA adapters into the model for export ({type(e).__name__}: {e})"
        ) from None


def _split_samples(predictor, data) -> tuple[str, Any]:
    for split in ("val", "test", "train"):
        dataset = getattr(data, split)
        if len(dataset):
            return split, dataset
    raise ExportError(f"{predictor.run_dir}: the run's data has no samples to verify the export with")


def _image_batches(dataset, collate, n: int) -> list[tuple[torch.Tensor, ...]]:
    first = collate([dataset[0]])[0]
    many = collate([dataset[i] for i in range(n)])[0]
    return [(first.float(),), (many.float(),)]


def _pad_to(batch: dict[str, torch.Tensor], length: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids, mask = batch["input_ids"], batch["attention_mask"]
    extra = length - ids.shape[1]
    if extra > 0:
        ids = torch.cat([ids, torch.full((ids.shape[0], extra), pad_id, dtype=ids.dtype)], dim=1)
        mask = torch.cat([mask, torch.zeros((mask.shape[0], extra), dtype=mask.dtype)], dim=1)
    return ids.long(), mask.long()


def _text_batches(dataset, collate, n: int, max_length: int, pad_id: int, causal: bool):
    if causal:
        block = collate([dataset[0]])
        half = max(1, block["input_ids"].shape[1] // 2)
        first = (block["input_ids"][:, :half].long(), block["attention_mask"][:, :half].long())
        many = collate([dataset[i] for i in range(n)])
        return [first, (many["input_ids"].long(), many["attention_mask"].long())]
    one = collate([dataset[0]])
    first = (one["input_ids"].long(), one["attention_mask"].long())
    many = collate([dataset[i] for i in range(n)])
    return [first, _pad_to(many, max_length, pad_id)]


def image_preprocessing_json(size: int, mean, std) -> dict[str, Any]:
    """How to turn a picture into the `images` input (the run's evaluation transform, spelled out)."""
    return {
        "kind": "image",
        "inputs": list(IMAGE_INPUTS),
        "layout": "NCHW",
        "dtype": "float32",
        "color": "RGB (any other mode converted first)",
        "resize_shorter_side": int(size * 256 / 224),
        "interpolation": "bilinear",
        "antialias": True,
        "center_crop": int(size),
        "image_size": int(size),
        "scale": "pixel values / 255",
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
    }


def text_preprocessing_json(tokenizer, max_length: int, causal: bool, max_positions: int) -> dict[str, Any]:
    from finetune_gui.core.data.common import pad_id_of

    out: dict[str, Any] = {
        "kind": "causal-lm" if causal else "text",
        "inputs": list(TEXT_INPUTS),
        "dtype": "int64",
        "tokenizer": "tokenizer",
        "tokenizer_class": type(tokenizer).__name__,
        "max_length": int(max_length),
        "truncation": True,
        "padding": "right, to the longest text in the batch; attention_mask 1 = token, 0 = padding",
        "pad_token_id": pad_id_of(tokenizer),
    }
    if causal:
        out.update(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            max_positions=int(max_positions),
            generation="the graph returns logits for every position; generate in Python by feeding the text so "
            "far and picking the next token from the last position's logits",
        )
    return out


def load_source(run_dir: str | Path, max_batch: int = VERIFY_BATCH) -> ExportSource:
    """The run's trained model in fp32 on the CPU, its deployable copy and its verification batches.

    Raises ExportError (or RunStateError for a missing or damaged run) with a message that says what to do.
    """
    from finetune_gui.core.data import build_data
    from finetune_gui.core.data.common import pad_id_of
    from finetune_gui.core.inference import load_predictor

    predictor = load_predictor(run_dir, device="cpu")
    model = predictor.model.float().eval()
    kind = predictor.kind
    try:
        if kind == "vision":
            data = build_data(predictor.config, image_size=predictor.image_size, mean=predictor.mean, std=predictor.std)
        else:
            data = build_data(predictor.config, tokenizer=predictor.tokenizer)
    except DataError as e:
        raise ExportError(
            f"verifying an export runs the model on the run's own validation samples, but its data cannot be read "
            f"now: {e}. Put the data back where data.path in {predictor.run.config} points."
        ) from None
    split, dataset = _split_samples(predictor, data)
    collate = data.collate_fn or torch.utils.data.default_collate
    n = min(max_batch, len(dataset))
    deployable, merged = _merged(model)
    deployable.eval()
    causal = kind == "hf-causal"
    if kind == "vision":
        batches = _image_batches(dataset, collate, n)
        eager, wrapped = ImageLogits(model).eval(), ImageLogits(deployable).eval()
        names = IMAGE_INPUTS
        prep = image_preprocessing_json(predictor.image_size, predictor.mean, predictor.std)
    elif kind in ("hf-sequence", "hf-causal"):
        pad_id = pad_id_of(predictor.tokenizer)
        batches = _text_batches(dataset, collate, n, predictor.config.data.max_length, pad_id, causal)
        eager, wrapped = TextLogits(model, causal).eval(), TextLogits(deployable, causal).eval()
        names = TEXT_INPUTS
        prep = {}
    else:  # pragma: no cover - every model kind is handled above
        raise RunStateError(f"{run_dir}: unknown model kind {kind!r}")
    source = ExportSource(
        run_dir=predictor.run_dir,
        config=predictor.config,
        task=predictor.task,
        labels=predictor.labels,
        kind=kind,
        model=deployable,
        eager=eager,
        deployable=wrapped,
        tokenizer=predictor.tokenizer,
        input_names=names,
        batches=batches,
        split=split,
        weights_source=predictor.weights_source,
        description=_describe(predictor),
        preprocessing=prep,
        lora_merged=merged,
        dataset=dataset,
        collate=collate,
    )
    if kind != "vision":
        source.preprocessing = text_preprocessing_json(
            predictor.tokenizer, predictor.config.data.max_length, causal, source.max_positions
        )
    return source


def _describe(predictor) -> str:
    """The backbone in words: the model name as configured and the architecture class."""
    model = predictor.model
    arch = type(model.get_base_model() if hasattr(model, "peft_config") else model).__name__
    name = predictor.config.model.name.strip()
    if predictor.config.resolve(name).is_dir():
        name = f"{Path(name).name} (local folder)"
    return f"{name}, {arch}"
