"""Verification: run each exported artefact against the trained eager model on real validation samples.

For every verification batch (batch 1 and batch N, see source.py) the artefact's outputs must satisfy
|exported - eager| <= atol + rtol * |eager| element by element (torch.allclose). Reported per format: the max abs
difference, top-1 agreement (classification), the batch sizes, pass/fail and a message that says why.

Tolerances (rtol, atol) per format:
  torchscript, pt2, safetensors, hf   1e-3, 1e-5  the same PyTorch CPU kernels as the eager model: measured
                                                  differences are 0, or ~1e-7 after a LoRA merge
  onnx                                1e-3, 1e-4  ONNX Runtime runs its own kernels (MLAS GEMM/conv, fused
                                                  attention, LayerNorm and GELU) that sum in another order.
                                                  Measured against eager fp32: 2.6e-6 (ResNet-18, 224 px),
                                                  4.6e-5 (ResNet-50, 224 px), 4e-7 (BERT-base, 128 tokens),
                                                  all random init. 4.6e-5 passes at atol 1e-5 only because
                                                  those logits were large (rtol covers them); the same error
                                                  on a logit near zero would fail without meaning anything,
                                                  so ONNX gets atol 1e-4, still far below what moves a
                                                  prediction (benchmarks/export_latency.py prints the diffs)
  onnx-int8                           top-1 agreement >= 99% on up to 256 validation samples (core/export/int8.py)

LoRA runs are exported with their adapters merged into the weights, so two things are checked: each artefact
against the merged eager model (the format's tolerance above: did the export keep the model?), and the merged
model against the trained one with its adapters, once (MERGE_TOLERANCE: did merging keep the model?). Folding
(alpha/r)·B·A into W rounds every merged weight to fp32 once; through many layers that adds up to ~1e-4 on the
logits (measured: 1.2e-4 on SmolLM2-135M's 30 layers, 1e-7 on a 2-layer GPT-2), so the merge gets atol 1e-3. A
failure of either fails the format.
"""

from __future__ import annotations

import importlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export.formats import FILES
from finetune_gui.core.export.measure import TIMED, against_eager, size_on_disk
from finetune_gui.core.export.report import ExportReport, FormatResult

DEFAULT_TOLERANCE = (1e-3, 1e-5)
TOLERANCES = {
    "torchscript": DEFAULT_TOLERANCE,
    "pt2": DEFAULT_TOLERANCE,
    "safetensors": DEFAULT_TOLERANCE,
    "hf": DEFAULT_TOLERANCE,
    "onnx": (1e-3, 1e-4),
    "onnx-int8": (0.0, 0.0),  # not element-wise: judged by top-1 agreement (core/export/int8.py)
}
LOADERS = {
    "torchscript": "finetune_gui.core.export.torchscript",
    "onnx": "finetune_gui.core.export.onnx",
    "onnx-int8": "finetune_gui.core.export.int8",
    "pt2": "finetune_gui.core.export.pt2",
    "safetensors": "finetune_gui.core.export.weights",
    "hf": "finetune_gui.core.export.hf",
}
LOADED_WITH = {
    "torchscript": "torch.jit.load",
    "onnx": "onnxruntime",
    "onnx-int8": "onnxruntime (int8)",
    "pt2": "torch.export.load",
    "safetensors": "the run's architecture + safetensors",
    "hf": "transformers Auto classes",
}


def format_module(fmt: str):
    """The module that saves and loads one format (save(source, path), load(path, source))."""
    return importlib.import_module(LOADERS[fmt])


MERGE_TOLERANCE = (1e-3, 1e-3)


def reference_outputs(source) -> list[torch.Tensor]:
    """The exported (deployable) eager model's outputs on each verification batch (fp32, CPU): the trained model
    itself, or its LoRA-merged copy."""
    with torch.no_grad():
        return [source.deployable(*batch).float() for batch in source.batches]


def merge_check(source, expected: list[torch.Tensor]) -> dict | None:
    """For a LoRA run: the merged model's outputs (`expected`) against the trained model with its adapters.
    None when nothing was merged."""
    if not source.lora_merged:
        return None
    rtol, atol = MERGE_TOLERANCE
    with torch.no_grad():
        trained = [source.eager(*batch).float() for batch in source.batches]
    worst = max(float((m - t).abs().max()) for m, t in zip(expected, trained))
    passed = all(torch.allclose(m, t, rtol=rtol, atol=atol) for m, t in zip(expected, trained))
    verdict = "within" if passed else "EXCEEDS"
    message = (
        f"LoRA merge: the merged weights give the trained model's outputs to max abs diff {worst:.2g} "
        f"({verdict} rtol {rtol:g}, atol {atol:g})"
    )
    return {"max_abs_diff": worst, "passed": passed, "rtol": rtol, "atol": atol, "message": message}


def with_merge(result: FormatResult, merge: dict | None) -> FormatResult:
    """Fail a format whose export was faithful when the merge it was exported from was not."""
    if merge is not None and not merge["passed"] and result.passed:
        result.passed = False
        result.message += f"; but {merge['message']}: do not deploy it"
    return result


def _top1(task, expected: list[torch.Tensor], got: list[torch.Tensor]) -> float | None:
    if task.is_regression or task.value == "causal-lm":
        return None
    same = total = 0
    for e, g in zip(expected, got):
        same += int((e.argmax(dim=-1) == g.argmax(dim=-1)).sum())
        total += int(e.shape[0])
    return same / total if total else None


def compare(
    fmt: str, path: Path, run: Callable[..., torch.Tensor], source, expected: list[torch.Tensor]
) -> FormatResult:
    """Run `run` on the verification batches and judge it against `expected` with the format's tolerance."""
    rtol, atol = TOLERANCES.get(fmt, DEFAULT_TOLERANCE)
    sizes = source.batch_sizes
    got: list[torch.Tensor] = []
    try:
        for batch in source.batches:
            got.append(run(*batch).float())
    except Exception as e:  # noqa: BLE001 - any failure of the artefact is a verification failure
        return FormatResult(
            fmt,
            path,
            math.inf,
            None,
            sizes,
            False,
            f"{path.name} loaded but failed on the verification samples ({type(e).__name__}: {_first_line(e)})",
            rtol,
            atol,
        )
    worst, failing = 0.0, []
    for size, e, g in zip(sizes, expected, got):
        if e.shape != g.shape:
            return FormatResult(
                fmt,
                path,
                math.inf,
                None,
                sizes,
                False,
                f"{path.name} gives outputs of shape {tuple(g.shape)} at batch {size}, the trained "
                f"model {tuple(e.shape)}",
                rtol,
                atol,
            )
        diff = float((g - e).abs().max()) if e.numel() else 0.0
        if not math.isfinite(diff):
            diff = math.inf
        worst = max(worst, diff)
        if not torch.allclose(g, e, rtol=rtol, atol=atol):
            failing.append(size)
    top1 = _top1(source.task, expected, got)
    tol = f"rtol {rtol:g}, atol {atol:g}"
    model = "the merged model" if source.lora_merged else "the trained model"
    if failing:
        where = " and ".join(str(s) for s in failing)
        message = (
            f"{path.name} does NOT give {model}'s outputs: max abs diff {worst:.3g} exceeds the "
            f"tolerance ({tol}) at batch {where}; do not deploy it"
        )
        return FormatResult(fmt, path, worst, top1, sizes, False, message, rtol, atol)
    agree = f", top-1 agreement {top1:.0%}" if top1 is not None else ""
    message = f"{path.name} ({LOADED_WITH[fmt]}) matches {model}: max abs diff {worst:.2g} within {tol}{agree}"
    return FormatResult(fmt, path, worst, top1, sizes, True, message, rtol, atol)


def verify_artefact(fmt: str, path: Path, source, expected: list[torch.Tensor] | None = None) -> FormatResult:
    """Load one artefact the way a deployment would and compare it with the eager model."""
    start = time.perf_counter()
    rtol, atol = TOLERANCES.get(fmt, DEFAULT_TOLERANCE)
    expected = expected if expected is not None else reference_outputs(source)
    if not path.exists():
        return FormatResult(fmt, path, math.inf, None, source.batch_sizes, False, f"{path.name} is missing", rtol, atol)
    try:
        run = format_module(fmt).load(path, source)
    except ExportError as e:
        return FormatResult(fmt, path, math.inf, None, source.batch_sizes, False, str(e), rtol, atol)
    except Exception as e:  # noqa: BLE001 - a damaged or incompatible file, reported as a failed check
        return FormatResult(
            fmt,
            path,
            math.inf,
            None,
            source.batch_sizes,
            False,
            f"cannot load {path.name} with {LOADED_WITH[fmt]} ({type(e).__name__}: {_first_line(e)}); "
            "the file is damaged or was not written by this export",
            rtol,
            atol,
        )
    result = compare(fmt, path, run, source, expected)
    if fmt == "onnx-int8":
        from finetune_gui.core.export.int8 import judge

        result = judge(result, run, source)
    result.size_bytes = size_on_disk(path)
    if fmt in TIMED and math.isfinite(result.max_abs_diff):
        result.ms, result.eager_ms = against_eager(run, source)
    result.seconds = round(time.perf_counter() - start, 3)
    return result


def verify_export(folder: str | Path, progress: Callable[[str], None] | None = None, save: bool = True) -> ExportReport:
    """Check an existing export folder again against its run (named in export.json); with `save`, rewrite its
    verification.json. A tampered or damaged artefact fails with a message naming it."""
    from finetune_gui.core.export.source import load_source
    from finetune_gui.files import atomic_write_json

    folder = Path(folder)
    manifest = read_manifest(folder)
    say = progress or (lambda _text: None)
    say(f"loading the trained model of {manifest['run']}")
    source = load_source(manifest["run"])
    expected = reference_outputs(source)
    merge = merge_check(source, expected)
    report = ExportReport(
        folder, [], Path(manifest["run"]), manifest.get("task", ""), source.samples_note(), merge=merge
    )
    for fmt in manifest["formats"]:
        say(f"verifying {fmt}")
        result = with_merge(verify_artefact(fmt, folder / FILES[fmt], source, expected), merge)
        say(result.message)
        report.results.append(result)
    if save:
        atomic_write_json(folder / "verification.json", report.to_json())
    return report


def read_manifest(folder: Path) -> dict:
    """export.json of an export folder: the run it came from, the task and the formats."""
    path = Path(folder) / "export.json"
    if not path.is_file():
        raise ExportError(f"{folder}: not an export folder (export.json missing); export a run first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["run"], data["formats"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ExportError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    return data


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
