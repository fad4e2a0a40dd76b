"""MODEL_CARD.md for an export folder: task, data, backbone, frozen layers, hyperparameters, metrics, files."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from finetune_gui.core.export.formats import DESCRIPTIONS, FILES

SKIP_METRICS = (
    "split",
    "best_epoch",
    "monitor",
    "labels",
    "per_class",
    "confusion_matrix",
    "scatter",
    "num_samples",
    "tokens",
)


def frozen_layers(config) -> str:
    """The run's freezing, in words."""
    m = config.model
    if m.lora.enabled:
        targets = ", ".join(m.lora.target_modules) or "the attention projections"
        text = (
            f"LoRA: the base weights were frozen and low-rank adapters (r={m.lora.r}, alpha={m.lora.alpha}) on "
            f"{targets} were trained; the adapters are merged into the exported weights"
        )
        return text
    text = {
        "none": "nothing frozen: every weight was trained",
        "head-only": "everything frozen except the task head",
        "last-n": f"everything frozen except the last {m.unfreeze_last_n} block(s) and the head",
        "modules": "frozen modules: " + (", ".join(m.frozen_modules) or "(none listed)"),
    }.get(m.freeze, m.freeze)
    if m.gradual_unfreeze_every:
        text += f"; one more block unfrozen every {m.gradual_unfreeze_every} epoch(s)"
    return text


def _hyperparameters(config) -> list[tuple[str, Any]]:
    t, a = config.train, config.augment
    rows: list[tuple[str, Any]] = [
        ("epochs", t.epochs),
        ("batch size", t.batch_size),
        ("optimizer", t.optimizer),
        ("learning rate", t.lr),
        ("weight decay", t.weight_decay),
        ("schedule", t.schedule),
        ("warmup fraction", t.warmup_fraction),
        ("label smoothing", t.label_smoothing),
        ("gradient clipping", t.grad_clip or "off"),
        ("gradient accumulation", t.grad_accum),
        ("precision", t.precision),
        ("seed", t.seed),
        ("backbone LR multiplier", config.model.backbone_lr_mult),
        ("head dropout", config.model.head_dropout),
    ]
    if config.task.kind.is_image:
        rows += [
            ("image size", config.data.image_size),
            (
                "augmentation",
                f"random resized crop {a.random_resized_crop}, hflip {a.hflip}, rotation "
                f"{a.rotation}, colour jitter {a.color_jitter}, auto {a.auto_augment}, mixup "
                f"{a.mixup_alpha}, cutmix {a.cutmix_alpha}",
            ),
        ]
    else:
        rows.append(("max length (tokens)", config.data.max_length))
    if config.early_stopping.enabled:
        es = config.early_stopping
        rows.append(("early stopping", f"{es.metric}, patience {es.patience}"))
    return rows


def _metrics(evaluation: dict[str, Any]) -> list[tuple[str, float]]:
    out = []
    for key, value in evaluation.items():
        if key in SKIP_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out.append((key, float(value)))
    return out


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return lines


def model_card(source, report, version: str) -> str:
    """The card's Markdown text."""
    config, task = source.config, source.task.value
    run = source.run_dir
    evaluation: dict[str, Any] = {}
    eval_path = Path(run) / "evaluation.json"
    if eval_path.is_file():
        try:
            evaluation = json.loads(eval_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            evaluation = {}
    d = config.data
    title = config.name if config.name and config.name != "run" else run.name
    lines = [
        f"# {title}: {task} model",
        "",
        f"Exported by finetune-gui {version} on {time.strftime('%Y-%m-%d %H:%M')} from the run folder `{run}` "
        f"(weights from `{source.weights_source}`).",
    ]
    if config.description:
        lines += ["", config.description]
    lines += [
        "",
        "## Model",
        "",
        f"- Task: {task}",
        f"- Backbone: {source.description}",
        "- Outputs: "
        + (
            f"{len(source.labels)} labels"
            if source.labels and not source.task.is_regression
            else "one value"
            if source.task.is_regression
            else "next-token logits over the vocabulary"
        ),
        f"- Frozen layers: {frozen_layers(config)}",
    ]
    if source.labels and task != "causal-lm":
        lines.append(f"- Labels (index order, also in labels.json): {', '.join(source.labels)}")
    if source.lora_merged:
        lines.append(
            "- The LoRA adapters were merged into the base weights before export; no peft is needed to "
            "load any of the files."
        )
    if task == "causal-lm":
        lines.append(
            "- Exported as the logits graph only (input_ids, attention_mask → logits for every position, no "
            'key/value cache): generation runs in Python (`finetune-gui predict EXPORT "prompt"`).'
        )
    lines += [
        "",
        "## Data",
        "",
        f"- Source: `{d.path}` (format {d.format})",
        f"- Split: validation {d.val_fraction:.0%}, test {d.test_fraction:.0%}, seed {d.split_seed}"
        + (f", at most {d.max_samples} samples" if d.max_samples else ""),
    ]
    if evaluation.get("num_samples"):
        lines.append(
            f"- Evaluated on {evaluation['num_samples']} samples of the {evaluation.get('split', 'test')} split"
        )
    lines += ["", "## Hyperparameters", ""] + _table(_hyperparameters(config), ("setting", "value"))
    metrics = _metrics(evaluation)
    lines += ["", f"## Metrics ({evaluation.get('split', 'test')} split, from evaluation.json)", ""]
    lines += (
        _table([(k, f"{v:.4f}") for k, v in metrics], ("metric", "value"))
        if metrics
        else ["No evaluation.json in the run: it did not finish its final evaluation."]
    )
    lines += ["", "## Inputs", ""]
    prep = source.preprocessing
    if prep.get("kind") == "image":
        lines.append(
            f"`images`: float32 NCHW RGB. Resize the shorter side to {prep['resize_shorter_side']} px "
            f"(bilinear, antialiased), centre-crop {prep['center_crop']}×{prep['center_crop']}, scale to "
            f"[0, 1], normalise with mean {prep['mean']} and std {prep['std']}. Output `logits`."
        )
    else:
        lines.append(
            f"`input_ids`, `attention_mask`: int64 (batch, tokens) from the tokenizer in `tokenizer/`, "
            f"truncated to {prep.get('max_length')} tokens, padded on the right. Output `logits`."
        )
    if task == "image-multilabel":
        lines.append("A sigmoid per label gives its probability; labels at 0.5 or more are predicted.")
    elif source.task.is_regression:
        lines.append("The output is the predicted value itself.")
    elif task != "causal-lm":
        lines.append("A softmax over `logits` gives the class probabilities.")
    lines += [
        "",
        "All of it is also in preprocessing.json.",
        "",
        "## Files and verification",
        "",
        f"Each artefact was loaded back and run against the trained model on {report.samples}.",
    ]
    lines.append("")
    rows = []
    for r in report.results:
        diff = f"{r.max_abs_diff:.2e}" if math.isfinite(r.max_abs_diff) else "-"
        top1 = f"{r.top1_agreement:.1%}" if r.top1_agreement is not None else "n/a"
        rows.append(
            (
                r.format,
                f"`{FILES[r.format]}`",
                DESCRIPTIONS[r.format].split(":")[0],
                diff,
                top1,
                "pass" if r.passed else "FAIL",
            )
        )
    lines += _table(rows, ("format", "file", "what", "max abs diff", "top-1 agreement", "verified"))
    if report.merge is not None:
        lines += ["", f"{report.merge['message']}. The differences above compare each file with the merged model."]
    for r in report.results:
        if r.format == "onnx-int8":  # judged by agreement, not by the differences in the table
            lines += ["", f"int8: {r.message}."]
    lines += [
        "",
        "Details in verification.json. Check a deployment with `finetune-gui predict THIS_FOLDER INPUT`.",
        "",
        "## Limitations",
        "",
        "The model learned from the data above only; check it on data like yours before relying on it.",
        "",
    ]
    return "\n".join(lines)
