"""The quick baseline: a linear probe on the frozen model's cached features, next to the rate of always
answering the most common class. It is a run like any other (its own run folder, listed and compared with
the rest), trained by the engine with head-only freezing, no augmentation and the feature cache on; the
run folder also holds baseline.json with the majority-class rates."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_gui.config import ConfigError, RunConfig, TaskKind
from finetune_gui.core.training.events import LogMessage
from finetune_gui.core.training.result import RunResult
from finetune_gui.files import atomic_write_json

#: augment settings a probe turns off, so the features can be cached
QUIET_AUGMENT = {"random_resized_crop": False, "hflip": 0.0, "vflip": 0.0, "rotation": 0.0, "color_jitter": 0.0,
                 "random_erasing": 0.0, "mixup_alpha": 0.0, "cutmix_alpha": 0.0, "auto_augment": "none"}  # fmt: skip
PROBE_EPOCHS, PROBE_LR, PROBE_PATIENCE = 50, 3e-3, 5


def probe_config(config: RunConfig, epochs: int = PROBE_EPOCHS) -> RunConfig:
    """The config of a linear probe of `config`'s model on its data: head-only, no augmentation, the cache on,
    AdamW with a cosine schedule, up to `epochs` (50) epochs stopped early on the validation loss."""
    if config.task.kind == TaskKind.CAUSAL_LM:
        raise ConfigError(["task.kind: a baseline probe needs a classification or regression task, not causal-lm"])
    model = config.model.model_copy(update={"freeze": "head-only", "gradual_unfreeze_every": 0, "head_dropout": 0.0,
                                            "lora": config.model.lora.model_copy(update={"enabled": False})})  # fmt: skip
    augment = config.augment.model_copy(update={k: v for k, v in QUIET_AUGMENT.items() if hasattr(config.augment, k)})
    train = config.train.model_copy(update={"feature_cache": "auto", "optimizer": "adamw", "lr": PROBE_LR,
                                            "schedule": "cosine", "epochs": epochs, "max_steps": None,
                                            "label_smoothing": 0.0, "l1": 0.0})  # fmt: skip
    stopping = config.early_stopping.model_copy(update={"enabled": True, "metric": "val_loss", "mode": "min",
                                                        "patience": PROBE_PATIENCE, "restore_best": True})  # fmt: skip
    name = f"{config.checkpoint.run_name or config.name}-baseline"[:100]
    checkpoint = config.checkpoint.model_copy(update={"run_name": name, "keep_last": 1, "monitor": ""})
    return config.model_copy(update={"model": model, "augment": augment, "train": train,
                                     "early_stopping": stopping, "checkpoint": checkpoint})  # fmt: skip


@dataclass(frozen=True)
class Majority:
    """Always answering the training split's most common class: that class and its share of each split."""

    label: str
    rates: dict[str, float]  # "val" / "test" -> accuracy of that answer


def majority_rates(data: Any) -> Majority | None:
    """The most common training class and how often it is right on val and test (None unless single-label)."""
    targets = getattr(data.train, "targets", None)
    if not data.labels or targets is None or not targets or not isinstance(targets[0], int):
        return None
    top = Counter(targets).most_common(1)[0][0]
    rates = {}
    for split in ("val", "test"):
        ys = getattr(getattr(data, split), "targets", None) or []
        if ys:
            rates[split] = sum(1 for y in ys if y == top) / len(ys)
    return Majority(data.labels[top], rates)


def run_baseline(config: RunConfig, listener=None, control=None, *, output_dir: str | Path | None = None,
                 epochs: int = PROBE_EPOCHS) -> tuple[RunResult, Majority | None]:  # fmt: skip
    """Fit the linear probe of `config` in a new run folder; writes baseline.json there next to the metrics and
    tells `listener` the probe's test metric beside the most common class's rate."""
    from finetune_gui.core.data import build_data
    from finetune_gui.core.training.engine import fit

    probe = probe_config(config, epochs)
    result = fit(probe, listener, control, output_dir=output_dir)
    majority = None
    if result.status in ("completed", "early-stopped") and probe.task.kind.is_classification:
        majority = majority_rates(build_data(probe, image_size=probe.data.image_size) if probe.task.kind.is_image
                                  else _text_data(probe))  # fmt: skip
        record = {"probe": "linear head on the frozen model's features", "val": result.val_metrics,
                  "test": result.test_metrics}  # fmt: skip
        if majority is not None:
            record["majority_class"] = {"label": majority.label, "accuracy": majority.rates}
        atomic_write_json(result.run_dir / "baseline.json", record)
        if listener is not None:
            listener(LogMessage("info", comparison_line(result, majority)))
    return result, majority


def comparison_line(result: RunResult, majority: Majority | None) -> str:
    """'baseline: linear probe test accuracy 0.812; always answering "bag": 0.250', in words for the log."""
    metrics = result.test_metrics or result.val_metrics
    key = next((k for k in metrics if k.endswith("_accuracy")), next(iter(metrics), ""))
    probe = f"linear probe {key.replace('_', ' ')} {metrics[key]:.3f}" if key else "linear probe done"
    if majority is None:
        return f"baseline: {probe}"
    split = "test" if "test" in majority.rates else "val"
    rate = majority.rates.get(split)
    return f"baseline: {probe}; always answering '{majority.label}': {rate:.3f}" if rate is not None else probe


def _text_data(config: RunConfig) -> Any:
    from finetune_gui.core.data import build_data
    from finetune_gui.core.models.hf import load_tokenizer

    return build_data(config, tokenizer=load_tokenizer(config))
