"""The export formats, which tasks each one serves, and the files they make. No torch here (the GUI reads it).

| format      | file                  | image tasks | text tasks | causal LM            |
|-------------|-----------------------|-------------|------------|----------------------|
| torchscript | model.torchscript.pt  | yes         | yes        | yes (logits graph)   |
| onnx        | model.onnx            | yes         | yes        | yes (logits graph)   |
| onnx-int8   | model.int8.onnx       | classifiers | classifiers| no                   |
| pt2         | model.pt2             | yes         | yes        | yes (logits graph)   |
| safetensors | model.safetensors     | yes         | yes        | yes                  |
| hf          | hf/ (save_pretrained) | no          | yes        | yes                  |
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from finetune_gui.core.errors import ExportError

FORMATS = ("torchscript", "onnx", "onnx-int8", "pt2", "safetensors", "hf")
#: Formats only made when asked for by name (not in the CLI's default "everything the task supports").
OPT_IN = ("onnx-int8",)

#: Where each format's artefact lies inside an export folder.
FILES = {
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
    "onnx-int8": "model.int8.onnx",
    "pt2": "model.pt2",
    "safetensors": "model.safetensors",
    "hf": "hf",
}

#: One line per format, for the GUI's check boxes and the CLI's help.
DESCRIPTIONS = {
    "torchscript": "TorchScript (torch.jit): loads in C++ / LibTorch and Python without this app",
    "onnx": "ONNX: runs in ONNX Runtime, TensorRT, OpenVINO, browsers and phones",
    "onnx-int8": "ONNX int8: weights quantised to 8 bits, ~4x smaller; faster on the CPU for transformers; "
    "checked by top-1 agreement (>= 99%)",
    "pt2": "torch.export program (.pt2): the graph PyTorch 2 deploys with (AOTInductor, ExecuTorch)",
    "safetensors": "safetensors weights only: load them into the same architecture",
    "hf": "Hugging Face folder (save_pretrained): loads with transformers' Auto classes",
}

IMAGE_TASKS = ("image-classification", "image-multilabel", "image-regression")
TEXT_TASKS = ("text-classification", "text-regression")
LM_TASKS = ("causal-lm",)
#: int8 is judged by top-1 agreement with the trained model, which only single-label classifiers have.
INT8_TASKS = ("image-classification", "text-classification")


def supported_formats(task: str) -> tuple[str, ...]:
    """The formats a task's model can be exported to (hf only for Hugging Face models, i.e. text and LM)."""
    task = getattr(task, "value", task)
    if task in IMAGE_TASKS:
        return tuple(f for f in FORMATS if f != "hf" and (f != "onnx-int8" or task in INT8_TASKS))
    if task in TEXT_TASKS or task in LM_TASKS:
        return tuple(f for f in FORMATS if f != "onnx-int8" or task in INT8_TASKS)
    raise ExportError(f"unknown task {task!r}; export knows {', '.join(IMAGE_TASKS + TEXT_TASKS + LM_TASKS)}")


def default_formats(task: str) -> tuple[str, ...]:
    """What an export makes when no format is named: every supported one except the opt-in ones (int8)."""
    return tuple(f for f in supported_formats(task) if f not in OPT_IN)


def parse_formats(formats: str | Iterable[str], task: str) -> list[str]:
    """Formats from "onnx,pt2" or a list, checked against the task; duplicates dropped, order kept.

    Raises ExportError naming the unknown or unsupported format and the ones that would work.
    """
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    wanted: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name and name not in wanted:
            wanted.append(name)
    if not wanted:
        raise ExportError(f"no export format given; choose from {', '.join(supported_formats(task))}")
    task = getattr(task, "value", task)
    allowed = supported_formats(task)
    for name in wanted:
        if name not in FORMATS:
            raise ExportError(f"unknown export format {name!r}; choose from {', '.join(FORMATS)}")
        if name not in allowed:
            why = " (it is for Hugging Face text models)" if name == "hf" else ""
            if name == "onnx-int8":
                why = (
                    " (int8 is verified by top-1 agreement with the trained model, which only image and text "
                    "classifiers have)"
                )
            raise ExportError(
                f"format {name!r} does not fit a {task} model{why}; this run can be exported as {', '.join(allowed)}"
            )
    return wanted


def run_task(run_dir: str | Path) -> str:
    """The task kind of a run folder, read from its labels.json (cheap: no torch, no model)."""
    labels = Path(run_dir) / "labels.json"
    if not (Path(run_dir) / "config.toml").is_file():
        raise ExportError(f"{run_dir}: not a run folder (config.toml missing); pick the folder a run was saved to")
    if not labels.is_file():
        raise ExportError(
            f"{run_dir}: labels.json missing; the run ended before it read its data, so it has no model to export"
        )
    try:
        return str(json.loads(labels.read_text(encoding="utf-8"))["task"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{labels}: unreadable ({type(e).__name__}: {e})") from None
