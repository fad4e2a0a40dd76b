"""Per-sample predictions on a run's own splits: the confusion matrix's cells and the highest-loss samples.

sample_predictions(run_dir, "test")   # -> SampleSet of SampleRecord, for the evaluation views
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from finetune_gui.config import TaskKind
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.inference import Predictor, load_predictor
from finetune_gui.core.run_model import read_evaluation


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
            out.append(SampleRecord(offset + k, str(names[k]), p.label_of(t), pred.label, pred.scores, loss, t, pi))
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
