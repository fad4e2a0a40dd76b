"""What a logged metric's name says: whether lower or higher is better, and which metric is a task's main one.
Torch-free, so listing runs (the CLI's `runs`, the Runs page) never loads it."""

from __future__ import annotations

from typing import Literal

_MIN_WORDS = ("loss", "mae", "mse", "rmse", "perplexity")

#: The metric a task is judged by on its test split (unprefixed), as the Evaluate page shows it first.
MAIN_METRIC = {
    "image-classification": "accuracy",
    "text-classification": "accuracy",
    "image-multilabel": "f1_micro",
    "image-regression": "mae",
    "text-regression": "mae",
    "causal-lm": "perplexity",
}


def metric_mode(name: str) -> Literal["min", "max"]:
    """Whether lower ("min") or higher ("max") is better for a metric name (prefixed or not)."""
    low = name.lower()
    return "min" if any(w in low for w in _MIN_WORDS) else "max"


def main_metric(task: str) -> str:
    """The task's main metric, unprefixed ("loss" for a task this version does not know)."""
    return MAIN_METRIC.get(str(task), "loss")
