"""A finished (or stopped) run's model, rebuilt from its folder: its task and labels, its trained weights, and
the preprocessing its data pipeline used. The public way to get a run's weights into its architecture.

The model is rebuilt from the run's config.toml and labels.json (without downloading pretrained weights) and
gets the run's final weights, else its best checkpoint, else its newest step checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune_gui.config import ConfigError, RunConfig, TaskKind, load_config
from finetune_gui.core import plan
from finetune_gui.core.checkpoints import CheckpointInfo, list_checkpoints, load_checkpoint
from finetune_gui.core.errors import RunStateError
from finetune_gui.core.models.bundle import ModelBundle
from finetune_gui.core.models.weights import load_model_weights
from finetune_gui.core.plan import IMAGENET_MEAN, IMAGENET_STD
from finetune_gui.core.runs import RunDir, open_run_dir


@dataclass
class RunModel:
    """A run's model with its trained weights loaded (on the CPU, in train mode as built)."""

    run: RunDir
    config: RunConfig
    task: TaskKind
    labels: list[str]
    bundle: ModelBundle
    weights_source: str  # which file the weights came from, relative to the run folder


def load_run_model(run_dir: str | Path) -> RunModel:
    """Rebuild a run's model and load its trained weights.

    Raises RunStateError (a missing, unfinished or damaged run) with a message that says what is wrong.
    """
    run = open_run_dir(run_dir, clean=False)  # the run may be writing (a resume): its temp files are live
    try:
        config = load_config(run.config)
    except ConfigError as e:
        raise RunStateError(f"{run.config}: cannot be read ({'; '.join(e.problems)})") from None
    task, labels = read_labels(run)
    if task != config.task.kind:
        raise RunStateError(f"{run.root}: labels.json says {task.value} but config.toml says {config.task.kind.value}")
    weights, source = trained_weights(run)
    bundle = build_architecture(config, task, labels)
    load_model_weights(bundle.model, weights, str(run.root / source))
    return RunModel(run, config, task, labels, bundle, source)


def read_labels(run: RunDir) -> tuple[TaskKind, list[str]]:
    """The task and the class names (in index order) a run trained on, from its labels.json."""
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


def build_architecture(config: RunConfig, task: TaskKind, labels: list[str]) -> ModelBundle:
    """The run's architecture, without fetching pretrained weights (the trained ones replace them)."""
    from finetune_gui.core.models import build_model

    cfg = config.model_copy(deep=True).with_base_dir(config.base_dir)
    cfg.model.pretrained = False
    cfg.model.weights_path = ""
    cfg.model.allow_random_init = True
    return build_model(cfg, plan.num_outputs(task, len(labels)))


def image_preprocessing(config: RunConfig, bundle: Any) -> tuple[int, tuple, tuple]:
    """(image size, mean, std) the run's data pipeline used, as the engine's `prepare` chose them."""
    mean, std = tuple(bundle.mean), tuple(bundle.std)
    mc = config.model
    if mc.pretrained and mc.source != "timm" and not mc.name.startswith(("timm/", "hf-hub:")):
        from finetune_gui.core.models.vision import mean_std, torchvision_weights

        try:
            mean, std = mean_std(torchvision_weights(mc.name.strip(), mc.weights))
        except Exception:  # noqa: BLE001 - unknown weights name: the run fell back to ImageNet statistics
            mean, std = IMAGENET_MEAN, IMAGENET_STD
    if (mean, std) != (IMAGENET_MEAN, IMAGENET_STD):
        return bundle.image_size, mean, std
    return config.data.image_size, mean, std
