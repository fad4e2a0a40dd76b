"""Export a trained run (TorchScript, ONNX, ONNX int8, torch.export .pt2, safetensors, HF folder) and verify it.

    from finetune_gui.core.export import export_run
    report = export_run("runs/fashion-20250101-120000", ["onnx", "torchscript"])
    report.ok, report.folder, [(r.format, r.max_abs_diff) for r in report.results]

Importing this package is cheap (no torch): export_run and verify_export load the heavy parts when called.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export.formats import DESCRIPTIONS, FILES, FORMATS, parse_formats, run_task, supported_formats
from finetune_gui.core.export.report import ExportReport, FormatResult

__all__ = [
    "DESCRIPTIONS",
    "ExportError",
    "ExportReport",
    "FILES",
    "FORMATS",
    "FormatResult",
    "export_run",
    "parse_formats",
    "run_task",
    "supported_formats",
    "verify_export",
]


def export_run(
    run_dir: str | Path,
    formats: str | Iterable[str],
    output: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a finished run in `formats` ("torchscript", "onnx", "onnx-int8", "pt2", "safetensors", "hf") into `output`
    (default <run>/exports/<date-time>) and verify each artefact against the trained model; see exporter.py."""
    from finetune_gui.core.export.exporter import export_run as _export_run

    return _export_run(run_dir, formats, output, progress)


def verify_export(folder: str | Path, progress: Callable[[str], None] | None = None, save: bool = True) -> ExportReport:
    """Check an existing export folder against its run again (a tampered file fails, naming it)."""
    from finetune_gui.core.export.verify import verify_export as _verify_export

    return _verify_export(folder, progress, save)
