"""Predictions from a trained run: load its model, predict new inputs, and score the run's own splits.

    predictor = load_predictor("runs/fashion-20250101-120000")
    predictor.predict_images(["shoe.png"])      # -> [Prediction(label="Sneaker", scores={...})]
    predictor.predict_texts(["what a film"])    # text tasks
    predictor.generate("Once upon", 40, 0.8)    # causal LM
    sample_predictions(run_dir, "test")         # per-sample records for the evaluation views

The model is rebuilt from the run's config.toml and labels.json (without downloading pretrained weights)
and gets the run's final weights, else its best checkpoint, else its newest step checkpoint.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from finetune_gui.config import ConfigError, RunConfig, TaskKind, load_config
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.runs import CheckpointInfo, RunDir, list_checkpoints, load_checkpoint, open_run_dir

__all__ = ["Prediction", "Predictor", "SampleRecord", "SampleSet", "load_predictor", "sample_predictions"]

MULTILABEL_THRESHOLD = 0.5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------- results


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


@dataclass(frozen=True)
class SampleRecord:
    """One sample of a split with the run's prediction for it."""

    index: int  # position in the split
    source: str  # image path or text
    true: str  # true label (names joined by ", " for multi-label, the number as text for regression)
    predicted: str
    scores: dict[str, float]
    loss: float  # unweighted task loss of this sample (cross-entropy, mean BCE, squared error)
    true_index: int = -1  # single-label classification: class indices (for confusion-matrix cells)
    pred_index: int = -1
    true_value: float | None = None  # regression
    pred_value: float | None = None


@dataclass
class SampleSet:
    """Per-sample predictions on one split of a run (causal LM: only the perplexity)."""

    split: str
    task: TaskKind
    labels: list[str]
    records: list[SampleRecord] = field(default_factory=list)
    perplexity: float | None = None

    def in_cell(self, true_index: int, pred_index: int) -> list[SampleRecord]:
        """The samples of one confusion-matrix cell (true class row, predicted class column)."""
        return [r for r in self.records if r.true_index == true_index and r.pred_index == pred_index]

    def top_loss(self, n: int = 20) -> list[SampleRecord]:
        return sorted(self.records, key=lambda r: r.loss, reverse=True)[:n]

    def confusion_matrix(self) -> list[list[int]]:
        k = len(self.labels)
        cm = [[0] * k for _ in range(k)]
        for r in self.records:
            if 0 <= r.true_index < k and 0 <= r.pred_index < k:
                cm[r.true_index][r.pred_index] += 1
        return cm


# ---------------------------------------------------------------- the predictor


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
                scores = _sorted_scores(self.labels, row)
                on = tuple(lbl for lbl, p in zip(self.labels, row) if p >= MULTILABEL_THRESHOLD)
                preds.append(Prediction(", ".join(on), scores, labels=on))
            return preds
        probs = torch.softmax(outputs, dim=1)
        for row in probs.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            preds.append(Prediction(self._label(best), _sorted_scores(self.labels, row)))
        return preds

    def _label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    # -- images

    def image_tensor(self, images: Sequence[Any]) -> torch.Tensor:
        from PIL import Image

        from finetune_gui.core.data.images import load_rgb, to_rgb

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


def _sorted_scores(labels: list[str], probs: list[float]) -> dict[str, float]:
    names = labels if len(labels) == len(probs) else [str(i) for i in range(len(probs))]
    return dict(sorted(zip(names, (float(p) for p in probs)), key=lambda kv: kv[1], reverse=True))


# ---------------------------------------------------------------- loading a run


def read_labels(run: RunDir) -> tuple[TaskKind, list[str]]:
    if not run.labels.exists():
        raise RunStateError(
            f"{run.root}: labels.json missing; the run ended before it read its data, so it has no model"
        )
    try:
        data = json.loads(run.labels.read_text(encoding="utf-8"))
        return TaskKind(data["task"]), [str(x) for x in data["labels"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunStateError(f"{run.labels}: unreadable ({type(e).__name__}: {e})") from None


def read_evaluation(run_dir: str | Path) -> dict[str, Any]:
    """evaluation.json of a finished run (test metrics, per-class table, confusion matrix, scatter)."""
    run = RunDir(Path(run_dir))
    if not run.evaluation.exists():
        raise RunStateError(f"{run.root}: no evaluation.json; the run has not finished (stopped or still running)")
    try:
        return json.loads(run.evaluation.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunStateError(f"{run.evaluation}: unreadable ({e})") from None


def trained_weights(run: RunDir) -> tuple[dict[str, torch.Tensor], str]:
    """The final weights, else the best checkpoint, else the newest step checkpoint; and which it was."""
    from safetensors.torch import load_file

    if run.final_weights.exists():
        try:
            return load_file(str(run.final_weights)), run.final_weights.name
        except Exception as e:  # noqa: BLE001 - a damaged file is the same problem whatever the cause
            raise RunStateError(
                f"{run.final_weights}: damaged or unreadable ({e}); the checkpoints may still load "
                "if you delete this file"
            ) from None
    candidates = [CheckpointInfo(run.checkpoints / "best.safetensors", run.checkpoints / "best.state.pt", -1)]
    candidates += list(reversed(list_checkpoints(run)))
    skipped = []
    for info in candidates:
        if not info.weights.exists():
            continue
        try:
            weights, _ = load_checkpoint(info)
            return weights, f"checkpoints/{info.weights.name}"
        except RunStateError as e:
            skipped.append(str(e))
    why = "; ".join(skipped) if skipped else "it stopped before saving any"
    raise RunStateError(f"{run.root}: no trained weights to load ({why})")


def _num_outputs(task: TaskKind, labels: list[str]) -> int:
    if task.is_regression:
        return 1
    return 0 if task == TaskKind.CAUSAL_LM else len(labels)


def _build(config: RunConfig, task: TaskKind, labels: list[str]):
    """The run's architecture, without fetching pretrained weights (the trained ones replace them)."""
    from finetune_gui.core.models import build_model

    cfg = config.model_copy(deep=True).with_base_dir(config.base_dir)
    cfg.model.pretrained = False
    cfg.model.weights_path = ""
    cfg.model.allow_random_init = True
    return build_model(cfg, _num_outputs(task, labels))


def image_preprocessing(config: RunConfig, bundle: Any) -> tuple[int, tuple, tuple]:
    """(image size, mean, std) the run's data pipeline used, as the engine's `prepare` chose them."""
    mean, std = tuple(bundle.mean), tuple(bundle.std)
    mc = config.model
    if mc.pretrained and mc.source != "timm" and not mc.name.startswith(("timm/", "hf-hub:")):
        from finetune_gui.core.models.vision import _mean_std, torchvision_weights

        try:
            mean, std = _mean_std(torchvision_weights(mc.name.strip(), mc.weights))
        except Exception:  # noqa: BLE001 - unknown weights name: the run fell back to ImageNet statistics
            mean, std = IMAGENET_MEAN, IMAGENET_STD
    if (mean, std) != (IMAGENET_MEAN, IMAGENET_STD):
        return bundle.image_size, mean, std
    return config.data.image_size, mean, std


def load_predictor(run_dir: str | Path, device: str | None = None) -> Predictor:
    """Rebuild a run's model with its trained weights, in eval mode, with its preprocessing.

    Raises RunStateError (a missing, unfinished or damaged run) with a message that says what is wrong.
    """
    from finetune_gui.core import devices
    from finetune_gui.core.training.engine import load_model_weights

    run = open_run_dir(run_dir)
    try:
        config = load_config(run.config)
    except ConfigError as e:
        raise RunStateError(f"{run.config}: cannot be read ({'; '.join(e.problems)})") from None
    task, labels = read_labels(run)
    if task != config.task.kind:
        raise RunStateError(f"{run.root}: labels.json says {task.value} but config.toml says {config.task.kind.value}")
    weights, source = trained_weights(run)
    bundle = _build(config, task, labels)
    load_model_weights(bundle.model, weights, str(run.root / source))
    try:
        dev = devices.pick_device(device or config.train.device)
    except ConfigError:
        dev = torch.device("cpu")  # the run's device is not on this machine
    bundle.model.to(dev).eval()
    size, mean, std = image_preprocessing(config, bundle) if task.is_image else (0, IMAGENET_MEAN, IMAGENET_STD)
    return Predictor(run, config, labels, bundle, dev, source, size, mean, std)


# ---------------------------------------------------------------- scoring a split


def _split_data(p: Predictor):
    from finetune_gui.core.data import build_data

    if p.task.is_image:
        return build_data(p.config, image_size=p.image_size, mean=p.mean, std=p.std)
    return build_data(p.config, tokenizer=p.tokenizer)


def _split_texts(p: Predictor, split: str, dataset: Any) -> list[str]:
    """The original texts of a text split, as the user wrote them (the dataset keeps token ids only).

    Redoes build_text_data's seeded subsample and split; the result is checked against the dataset's token ids
    and, should the two ever disagree, the tokens are decoded instead.
    """
    from finetune_gui.core.data.common import random_split_indices, stratified_split_indices, subsample_indices
    from finetune_gui.core.data.text import collect_text

    d = p.config.data
    rec = collect_text(p.config, p.task)
    classify = p.task == TaskKind.TEXT_CLASSIFICATION
    keep = subsample_indices(len(rec.texts), d.max_samples, d.split_seed, rec.targets if classify else None)
    texts = [rec.texts[k] for k in keep]
    if classify:
        parts = stratified_split_indices([rec.targets[k] for k in keep], d.val_fraction, d.test_fraction, d.split_seed)
    else:
        parts = random_split_indices(len(texts), d.val_fraction, d.test_fraction, d.split_seed)
    chosen = [texts[k] for k in parts[("train", "val", "test").index(split)]]
    ids = p.tokenizer(chosen, truncation=True, max_length=d.max_length, verbose=False)["input_ids"] if chosen else []
    if len(chosen) == len(dataset) and all(list(a) == list(b) for a, b in zip(ids, dataset.input_ids)):
        return chosen
    return [p.tokenizer.decode(x, skip_special_tokens=True) for x in dataset.input_ids]


def sample_predictions(
    run_dir: str | Path, split: str = "test", predictor: Predictor | None = None, batch_size: int | None = None
) -> SampleSet:
    """Every sample of a run's split (recreated as the run made it) with its prediction and loss.

    An empty test split falls back to val, as the run's final evaluation does. Causal LM: only the perplexity
    from evaluation.json.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, not {split!r}")
    p = predictor or load_predictor(run_dir)
    if p.task == TaskKind.CAUSAL_LM:
        ev = read_evaluation(p.run_dir)
        return SampleSet(ev.get("split", split), p.task, [], [], perplexity=ev.get("perplexity"))
    data = _split_data(p)
    if list(data.labels) != p.labels and not p.task.is_regression:
        raise RunStateError(
            f"{data.source}: the data changed since the run (labels {data.labels} now, {p.labels} then); the run's "
            "splits cannot be recreated"
        )
    dataset = getattr(data, split)
    if len(dataset) == 0 and split == "test":
        split, dataset = "val", data.val
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=batch_size or p.config.train.batch_size,
        shuffle=False,
        num_workers=0,
        collate_fn=data.collate_fn,
    )
    sources = _split_texts(p, split, dataset) if p.task.is_text else list(dataset.paths)
    records: list[SampleRecord] = []
    for batch in loader:
        if isinstance(batch, dict):
            targets = batch["labels"]
        else:
            batch, targets = batch
        names = sources[len(records) : len(records) + len(targets)]
        records += _records(p, p.outputs(batch), targets, names, len(records))
    return SampleSet(split, p.task, p.labels, records)


def _records(
    p: Predictor, outputs: torch.Tensor, targets: torch.Tensor, names: list[str], offset: int
) -> list[SampleRecord]:
    preds = p.to_predictions(outputs)
    out = []
    if p.task.is_classification:
        y = targets.long().reshape(-1)
        losses = F.cross_entropy(outputs, y, reduction="none").tolist()
        predicted = outputs.argmax(dim=1).tolist()
        for k, (pred, t, loss, pi) in enumerate(zip(preds, y.tolist(), losses, predicted)):
            out.append(SampleRecord(offset + k, str(names[k]), p._label(t), pred.label, pred.scores, loss, t, pi))
    elif p.task == TaskKind.IMAGE_MULTILABEL:
        y = targets.float()
        losses = F.binary_cross_entropy_with_logits(outputs, y, reduction="none").mean(dim=1).tolist()
        for k, (pred, loss) in enumerate(zip(preds, losses)):
            true = ", ".join(lbl for lbl, v in zip(p.labels, y[k].tolist()) if v >= 0.5)
            out.append(SampleRecord(offset + k, str(names[k]), true, pred.label, pred.scores, loss))
    else:
        y = targets.float().reshape(-1).tolist()
        for k, (pred, t) in enumerate(zip(preds, y)):
            err = (pred.value - t) ** 2 if pred.value is not None and math.isfinite(pred.value) else float("inf")
            out.append(
                SampleRecord(
                    offset + k, str(names[k]), f"{t:.4g}", pred.label, {}, err, true_value=t, pred_value=pred.value
                )
            )
    return out
