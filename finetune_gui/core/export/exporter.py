"""export_run: a run's trained model → an export folder with every asked format, verified, never half-written.

The folder is built under a temporary name next to its final place and renamed when complete, so a crash or
a failed export never leaves a half-written export folder under its final name, and an existing non-empty
folder is never touched.

    exports/20250101-120000/
      model.torchscript.pt  model.onnx  model.int8.onnx  model.pt2  model.safetensors  hf/   (those asked for)
      tokenizer/            text and LM runs: the tokenizer (AutoTokenizer.from_pretrained)
      labels.json           task and class names in output order
      preprocessing.json    image size, resize, crop, mean/std; or tokenizer, max length, padding
      MODEL_CARD.md         task, data, backbone, frozen layers, hyperparameters, metrics, verification
      verification.json     per format: max abs diff, top-1 agreement, batch sizes, size, speed, pass/fail, message
      export.json           the run, the task, the formats and their files (what `predict` reads)
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from finetune_gui.core.errors import ExportError
from finetune_gui.core.export.formats import FILES, parse_formats, run_task
from finetune_gui.core.export.report import ExportReport, FormatResult
from finetune_gui.files import TMP_PREFIX, atomic_write_json, atomic_write_text
from finetune_gui.paths import expand_user


def default_output(run_dir: Path) -> Path:
    """<run>/exports/<date-time>, with -2, -3... when that name is taken."""
    base = run_dir / "exports" / time.strftime("%Y%m%d-%H%M%S")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def check_output(output: Path) -> None:
    """Refuse a path that is a file or a folder that already holds something."""
    if output.is_file():
        raise ExportError(f"{output}: is a file; give a new or empty folder for the export")
    if output.is_dir() and any(output.iterdir()):
        raise ExportError(
            f"{output}: already holds files; an export never overwrites. Choose a new or empty folder "
            "(or leave --output out for a fresh one under the run's exports/)"
        )


def _publish(tmp: Path, final: Path) -> None:
    check_output(final)
    if final.is_dir():
        final.rmdir()  # empty: made by the user for the export
    try:
        os.rename(tmp, final)
    except OSError as e:
        raise ExportError(f"{final}: cannot move the finished export into place ({e})") from None


def export_run(
    run_dir: str | Path,
    formats: str | Iterable[str],
    output: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportReport:
    """Export a finished run in `formats` and verify every artefact against the trained model.

    Raises ExportError (unusable run, format the task does not support, output folder not empty) or
    RunStateError (missing or damaged run). A failed export or verification of one format does not raise:
    its FormatResult has passed=False and the report's `ok` is False.
    """
    from finetune_gui import __version__
    from finetune_gui.core.export.card import model_card
    from finetune_gui.core.export.source import load_source
    from finetune_gui.core.export.verify import (
        LOADED_WITH,
        TOLERANCES,
        format_module,
        merge_check,
        reference_outputs,
        verify_artefact,
        with_merge,
    )

    say = progress or (lambda _text: None)
    run_dir = Path(run_dir).resolve() if Path(run_dir).exists() else Path(run_dir)
    task = run_task(run_dir)
    wanted = parse_formats(formats, task)
    final = expand_user(output).resolve() if output else default_output(run_dir)
    check_output(final)

    say(f"loading the trained model of {run_dir.name} and its validation samples")
    source = load_source(run_dir)
    expected = reference_outputs(source)
    merge = merge_check(source, expected)
    if merge is not None:
        say(merge["message"])
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}export-{final.name}-", dir=final.parent))
    report = ExportReport(final, [], source.run_dir, task, source.samples_note(), merge=merge)
    try:
        atomic_write_json(tmp / "labels.json", {"task": task, "labels": source.labels})
        atomic_write_json(tmp / "preprocessing.json", source.preprocessing)
        if source.tokenizer is not None:
            source.tokenizer.save_pretrained(str(tmp / "tokenizer"))
        for fmt in wanted:
            start = time.perf_counter()
            say(f"exporting {fmt}…")
            module = format_module(fmt)
            target = tmp / FILES[fmt]
            try:
                module.save(source, target)
            except Exception as e:  # noqa: BLE001 - one format failing is reported, the others go on
                _remove(target)
                detail = "" if isinstance(e, ExportError) else f" ({type(e).__name__})"
                rtol, atol = TOLERANCES[fmt]
                message = f"export to {fmt} failed{detail}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                result = FormatResult(
                    fmt,
                    final / FILES[fmt],
                    math.inf,
                    None,
                    source.batch_sizes,
                    False,
                    message.rstrip(": "),
                    rtol,
                    atol,
                    details="" if isinstance(e, ExportError) else traceback.format_exc(),
                )
            else:
                say(f"verifying {fmt} with {LOADED_WITH[fmt]}…")
                result = with_merge(verify_artefact(fmt, target, source, expected), merge)
                result.path = final / FILES[fmt]
            result.seconds = round(time.perf_counter() - start, 3)
            say(("✓ " if result.passed else "✗ ") + f"{fmt}: {result.message}")
            report.results.append(result)
        manifest = {
            "finetune_gui": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "run": str(source.run_dir),
            "task": task,
            "kind": source.kind,
            "labels": source.labels,
            "formats": [r.format for r in report.results if r.path is not None and (tmp / FILES[r.format]).exists()],
            "files": {fmt: FILES[fmt] for fmt in wanted if (tmp / FILES[fmt]).exists()},
            "inputs": list(source.input_names),
            "outputs": ["logits"],
            "lora_merged": source.lora_merged,
        }
        atomic_write_json(tmp / "export.json", manifest)
        atomic_write_json(tmp / "verification.json", report.to_json())
        atomic_write_text(tmp / "MODEL_CARD.md", model_card(source, report, __version__))
        _shareable(tmp)
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"export {'verified' if report.ok else 'FAILED verification'}: {final}")
    return report


def _shareable(folder: Path) -> None:
    """Ordinary permissions (umask) instead of the private ones temporary files and folders are made with."""
    umask = os.umask(0)
    os.umask(umask)
    for p in [folder, *folder.rglob("*")]:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~umask)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        for p in (path, path.with_name(path.name + ".data")):
            if p.exists():
                p.unlink()
