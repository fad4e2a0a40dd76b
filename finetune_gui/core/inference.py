"""Predictions from a trained run: load its model and predict new inputs.

    predictor = load_predictor("runs/fashion-20250101-120000")
    predictor.predict_images(["shoe.png"])      # -> [Prediction(label="Sneaker", scores={...})]
    predictor.predict_texts(["what a film"])    # text tasks
    predictor.generate("Once upon", 40, 0.8)    # causal LM

The model comes from core.run_model (the run's architecture with its trained weights); per-sample
predictions on the run's own splits are in core.samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_gui.config import ConfigError, RunConfig, TaskKind
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD
from finetune_gui.core.run_model import image_preprocessing, load_run_model
from finetune_gui.core.runs import RunDir

__all__ = ["MULTILABEL_THRESHOLD", "Prediction", "Predictor", "load_predictor", "sorted_scores"]

MULTILABEL_THRESHOLD = 0.5


@dataclass(frozen=True)
class Prediction:
    """One input's prediction.

    label: the predicted class; for multi-label the labels at or above 0.5 joined by ", "; for regression the
    value as text. scores: label → probability, highest first (softmax for single-label, a sigmoid per label for
    multi-label; {} for regression). value: the predicted number (regression only).
    """

    label: str
    scores: dict[str, float]
    value: float | None = None
    labels: tuple[str, ...] = ()  # multi-label: every label predicted


class Predictor:
    """A run's trained model in eval mode with its preprocessing. Not thread-safe: use from one thread at a time."""

    def __init__(
        self,
        run: RunDir,
        config: RunConfig,
        labels: list[str],
        bundle: Any,
        device: torch.device,
        weights_source: str,
        image_size: int = 0,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ):
        self.run, self.config, self.labels = run, config, list(labels)
        self.task: TaskKind = config.task.kind
        self.model = bundle.model
        self.kind: str = bundle.kind
        self.tokenizer = bundle.tokenizer
        self.device = device
        self.weights_source = weights_source
        self.image_size, self.mean, self.std = image_size, tuple(mean), tuple(std)
        from finetune_gui.core import devices

        try:
            self.amp_dtype = devices.autocast_dtype(device, config.train.precision)
        except ConfigError:
            self.amp_dtype = None
        self.transform = None
        if self.task.is_image:
            from finetune_gui.core.data.augment import build_image_transforms

            self.transform = build_image_transforms(config.augment, image_size, mean, std, train=False)

    @property
    def run_dir(self) -> Path:
        return self.run.root

    def _autocast(self):
        from contextlib import nullcontext

        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()

    # -- raw outputs

    @torch.no_grad()
    def outputs(self, batch: Any) -> torch.Tensor:
        """Float logits / values on the CPU for a batch (an image tensor, or a dict from the text collator)."""
        if self.kind == "hf-causal":
            raise RunStateError("a causal language model has no class outputs; use generate()")
        with self._autocast():
            if isinstance(batch, dict):
                batch = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
                out = self.model(**batch).logits
            else:
                out = self.model(batch.to(self.device))
        return out.detach().float().cpu()

    def to_predictions(self, outputs: torch.Tensor) -> list[Prediction]:
        """Turn a batch of outputs into Predictions (softmax, a sigmoid per label, or the value)."""
        preds: list[Prediction] = []
        if self.task.is_regression:
            for v in outputs.reshape(-1).tolist():
                preds.append(Prediction(f"{v:.4g}", {}, value=float(v)))
            return preds
        if self.task == TaskKind.IMAGE_MULTILABEL:
            probs = torch.sigmoid(outputs)
            for row in probs.tolist():
                scores = sorted_scores(self.labels, row)
                on = tuple(lbl for lbl, p in zip(self.labels, row) if p >= MULTILABEL_THRESHOLD)
                preds.append(Prediction(", ".join(on), scores, labels=on))
            return preds
        probs = torch.softmax(outputs, dim=1)
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            preds.append(Prediction(self.label_of(best), sorted_scores(self.labels, row)))
        return preds

    def label_of(self, index: int) -> str:
        """The name of a class index (the index as text when the run's labels do not have it)."""
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    # -- images

    def image_tensor(self, images: Sequence[Any]) -> torch.Tensor:
        from PIL import Image

        from finetune_gui.core.data.image_files import load_rgb, to_rgb

        tensors = []
        for im in images:
            if isinstance(im, Image.Image):
                rgb = to_rgb(im)
            else:
                try:
                    rgb = load_rgb(im)
                except Exception as e:  # noqa: BLE001 - any decoder failure is the same problem to the user
                    raise RunStateError(f"{im}: not a readable image ({type(e).__name__}: {e})") from None
            tensors.append(self.transform(rgb))
        return torch.stack(tensors)

    def predict_images(self, images: Sequence[Any], batch_size: int = 32) -> list[Prediction]:
        """Predictions for image files (paths) or PIL images."""
        if not self.task.is_image:
            raise RunStateError(f"this run is a {self.task.value} model; it predicts from text, not images")
        images = list(images)
        out: list[Prediction] = []
        for a in range(0, len(images), batch_size):
            out += self.to_predictions(self.outputs(self.image_tensor(images[a : a + batch_size])))
        return out

    # -- text

    def text_batch(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise and pad like the training data (the same truncation and collator)."""
        from finetune_gui.core.data.common import PadCollator, pad_id_of

        ids = self.tokenizer(list(texts), truncation=True, max_length=self.config.data.max_length, verbose=False)
        samples = [
            {
                "input_ids": torch.tensor(x, dtype=torch.long),
                "attention_mask": torch.ones(len(x), dtype=torch.long),
                "labels": 0,
            }
            for x in ids["input_ids"]
        ]
        return PadCollator(pad_id_of(self.tokenizer), "class")(samples)

    def predict_texts(self, texts: Sequence[str], batch_size: int = 32) -> list[Prediction]:
        if not self.task.is_text:
            what = "images" if self.task.is_image else "a prompt (use generate())"
            raise RunStateError(f"this run is a {self.task.value} model; it predicts from {what}, not text")
        texts = [str(t) for t in texts]
        if any(not t.strip() for t in texts):
            raise RunStateError("empty text: type something to predict from")
        out: list[Prediction] = []
        for a in range(0, len(texts), batch_size):
            out += self.to_predictions(self.outputs(self.text_batch(texts[a : a + batch_size])))
        return out

    # -- generation

    @torch.no_grad()
    def generate(self, prompt: str, max_new_tokens: int = 50, temperature: float = 0.8, seed: int | None = None) -> str:
        """The text a causal LM writes after `prompt` (the continuation only). temperature 0 = greedy."""
        if self.task != TaskKind.CAUSAL_LM:
            raise RunStateError(f"this run is a {self.task.value} model; only causal-LM runs generate text")
        tok = self.tokenizer
        ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"] if prompt else None
        if ids is None or ids.shape[1] == 0:
            start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            if start is None:
                raise RunStateError("type a prompt: this tokenizer has no start-of-text token to begin from")
            ids = torch.tensor([[start]])
        ids = ids.to(self.device)
        if seed is not None:
            torch.manual_seed(seed)
        kwargs: dict[str, Any] = {"max_new_tokens": int(max(1, max_new_tokens)), "pad_token_id": tok.pad_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=float(temperature), top_k=50)
        else:
            kwargs.update(do_sample=False)
        with self._autocast():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
        return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def sorted_scores(labels: list[str], probs: list[float]) -> dict[str, float]:
    """label → score, highest first (indices as names when the labels do not match the scores)."""
    names = labels if len(labels) == len(probs) else [str(i) for i in range(len(probs))]
    return dict(sorted(zip(names, (float(p) for p in probs)), key=lambda kv: kv[1], reverse=True))


def load_predictor(run_dir: str | Path, device: str | None = None) -> Predictor:
    """Rebuild a run's model with its trained weights, in eval mode, with its preprocessing.

    Raises RunStateError (a missing, unfinished or damaged run) with a message that says what is wrong.
    """
    from finetune_gui.core import devices

    m = load_run_model(run_dir)
    try:
        dev = devices.pick_device(device or m.config.train.device)
    except ConfigError:
        dev = torch.device("cpu")  # the run's device is not on this machine
    m.bundle.model.to(dev).eval()
    is_image = m.task.is_image
    size, mean, std = image_preprocessing(m.config, m.bundle) if is_image else (0, IMAGENET_MEAN, IMAGENET_STD)
    return Predictor(m.run, m.config, m.labels, m.bundle, dev, m.weights_source, size, mean, std)
