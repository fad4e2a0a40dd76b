"""Task metrics (torchmetrics), fed per batch by the engine.

`compute()` returns unprefixed names (the engine adds train_/val_/test_) mapped to finite python floats;
a value that cannot be computed (r2 of one sample, an empty split) is left out, never NaN.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanSquaredError, R2Score
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MultilabelAccuracy,
    MultilabelF1Score,
    MultilabelStatScores,
)

from finetune_gui.config import TaskKind
from finetune_gui.core.metric_names import metric_mode

__all__ = ["MAX_SCATTER_POINTS", "MAX_PERPLEXITY", "TaskMetrics", "default_monitor", "metric_mode"]

MAX_SCATTER_POINTS = 2000
MAX_PERPLEXITY = 1e9
IGNORE_INDEX = -100


def default_monitor(task: TaskKind) -> str:
    return "val_loss"


def _finite(d: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        f = float(v)
        if math.isfinite(f):
            out[k] = f
    return out


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b > 0, a / b.clamp(min=1), torch.zeros_like(a))


def _prf_table(tp: Tensor, fp: Tensor, fn: Tensor, support: Tensor, labels: list[str]) -> list[dict[str, Any]]:
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    return [
        {
            "label": labels[i] if i < len(labels) else str(i),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i in range(len(tp))
    ]


class TaskMetrics:
    """Accumulates one split's metrics over batches for a task.

    `update(outputs, targets, loss, batch_size)`: outputs are logits ([B,C] classification, [B,L]
    multilabel), predictions ([B] or [B,1] regression) or None (causal LM, where targets are the
    labels tensor and the loss is weighted by the number of predicted tokens).
    """

    def __init__(self, task: TaskKind, labels: list[str], device: str | torch.device = "cpu"):
        self.task = TaskKind(task)
        self.labels = list(labels)
        self.device = torch.device(device)
        self._metrics: dict[str, Any] = {}
        if self.task.is_classification:
            c = max(2, len(self.labels))
            self.num_classes = c
            self._metrics = {
                "accuracy": MulticlassAccuracy(num_classes=c, average="micro"),
                "precision_macro": MulticlassPrecision(num_classes=c, average="macro"),
                "recall_macro": MulticlassRecall(num_classes=c, average="macro"),
                "f1_macro": MulticlassF1Score(num_classes=c, average="macro"),
            }
            if c > 5:
                self._metrics["top5_accuracy"] = MulticlassAccuracy(num_classes=c, top_k=min(5, c), average="micro")
            self._confmat = MulticlassConfusionMatrix(num_classes=c).to(self.device)
        elif self.task in (TaskKind.IMAGE_MULTILABEL,):
            n = max(1, len(self.labels))
            self.num_labels = n
            self._metrics = {
                "f1_micro": MultilabelF1Score(num_labels=n, average="micro"),
                "f1_macro": MultilabelF1Score(num_labels=n, average="macro"),
                "hamming_accuracy": MultilabelAccuracy(num_labels=n, average="micro"),
            }
            self._stats = MultilabelStatScores(num_labels=n, average=None).to(self.device)
        elif self.task.is_regression:
            self._metrics = {
                "mae": MeanAbsoluteError(),
                "rmse": MeanSquaredError(squared=False),
                "r2": R2Score(),
            }
        elif self.task != TaskKind.CAUSAL_LM:  # pragma: no cover - every TaskKind is handled above
            raise ValueError(f"no metrics for task {self.task.value}")
        for m in self._metrics.values():
            m.to(self.device)
        self.reset()

    # ------------------------------------------------------------ feeding

    def reset(self) -> None:
        self._loss_sum = 0.0
        self._loss_weight = 0.0
        self._count = 0
        self._exact = 0
        self._pairs: list[tuple[float, float]] = []
        for m in self._metrics.values():
            m.reset()
        if hasattr(self, "_confmat"):
            self._confmat.reset()
        if hasattr(self, "_stats"):
            self._stats.reset()

    def update(self, outputs: Tensor | None, targets: Tensor | None, loss: float, batch_size: int) -> None:
        loss = float(loss)
        if self.task == TaskKind.CAUSAL_LM:
            weight = float(batch_size)
            if targets is not None and targets.dim() >= 2:
                weight = float((targets[:, 1:] != IGNORE_INDEX).sum().item())
            if weight > 0 and math.isfinite(loss):
                self._loss_sum += loss * weight
                self._loss_weight += weight
            self._count += int(batch_size)
            return
        if outputs is None or targets is None:
            raise ValueError(f"{self.task.value} metrics need outputs and targets")
        batch_size = int(batch_size)
        if math.isfinite(loss):
            self._loss_sum += loss * batch_size
            self._loss_weight += batch_size
        self._count += batch_size
        outputs = outputs.detach().to(self.device).float()
        targets = targets.detach().to(self.device)

        if self.task.is_classification:
            if targets.dim() == 2:  # soft targets (mixup / cutmix): the dominant class
                targets = targets.argmax(dim=1)
            targets = targets.long()
            for m in self._metrics.values():
                m.update(outputs, targets)
            self._confmat.update(outputs, targets)
        elif self.task == TaskKind.IMAGE_MULTILABEL:
            probs = torch.sigmoid(outputs)  # explicit: torchmetrics would treat logits in [0,1] as probabilities
            hot = (targets.float() >= 0.5).long()
            for m in self._metrics.values():
                m.update(probs, hot)
            self._stats.update(probs, hot)
            self._exact += int(((probs >= 0.5).long() == hot).all(dim=1).sum().item())
        else:  # regression
            pred = outputs.reshape(-1)
            true = targets.float().reshape(-1)
            for m in self._metrics.values():
                m.update(pred, true)
            room = MAX_SCATTER_POINTS - len(self._pairs)
            if room > 0:
                self._pairs.extend(zip(true[:room].cpu().tolist(), pred[:room].cpu().tolist()))

    # ------------------------------------------------------------ results

    @property
    def num_samples(self) -> int:
        return self._count

    def compute(self) -> dict[str, float]:
        """Unprefixed metric name → finite float; {} before any update."""
        if self._count == 0:
            return {}
        out: dict[str, float] = {}
        if self._loss_weight > 0:
            out["loss"] = self._loss_sum / self._loss_weight
        if self.task == TaskKind.CAUSAL_LM:
            if "loss" in out:
                try:
                    out["perplexity"] = min(math.exp(out["loss"]), MAX_PERPLEXITY)
                except OverflowError:
                    out["perplexity"] = MAX_PERPLEXITY
            return _finite(out)
        for name, m in self._metrics.items():
            if name == "r2" and self._count < 2:
                continue
            out[name] = float(m.compute().item())
        if self.task == TaskKind.IMAGE_MULTILABEL:
            out["accuracy"] = self._exact / self._count
        return _finite(out)

    def report(self) -> dict[str, Any]:
        """compute() plus the tables for evaluation.json (per class / per label, confusion, scatter)."""
        rep: dict[str, Any] = dict(self.compute())
        rep["num_samples"] = self._count
        if self._count == 0:
            return rep
        if self.task.is_classification:
            cm = self._confmat.compute().long().cpu()  # rows: true class, columns: predicted
            n = len(self.labels) if len(self.labels) >= 2 else self.num_classes
            cm = cm[:n, :n]
            tp = cm.diag()
            support = cm.sum(dim=1)
            rep["labels"] = list(self.labels)
            rep["per_class"] = _prf_table(tp, cm.sum(dim=0) - tp, support - tp, support, self.labels)
            rep["confusion_matrix"] = cm.tolist()
        elif self.task == TaskKind.IMAGE_MULTILABEL:
            stats = self._stats.compute().long().cpu()  # [L, 5]: tp, fp, tn, fn, support
            if stats.dim() == 1:
                stats = stats.unsqueeze(0)
            rep["labels"] = list(self.labels)
            rep["per_label"] = _prf_table(stats[:, 0], stats[:, 1], stats[:, 3], stats[:, 4], self.labels)
        elif self.task.is_regression:
            rep["scatter"] = [[t, p] for t, p in self._pairs if math.isfinite(t) and math.isfinite(p)]
        else:
            rep["tokens"] = int(self._loss_weight)
        return rep
