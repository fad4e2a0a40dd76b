"""`finetune-gui --self-test`: prove that this installation (a source checkout or a frozen bundle) works.

Runs offscreen and offline, in a temporary folder: imports everything the app loads (including the parts that
load lazily and that a frozen bundle easily misses), opens the main window and visits every page, trains one
tiny step and exports the result to ONNX with its verification. Prints one line per check, `ok` or `FAIL` with
the reason, and returns 1 when any check failed. Checks run in order and each runs even when an earlier one
failed, so one bundle build shows every missing piece at once.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from finetune_gui import __version__

WINDOW_SETTLE_S = 0.3  # event processing after the window shows, so it lays out and paints
WORKERS_TIMEOUT_S = 120.0  # background work the pages start (catalog, layer tree) must end within this


class CheckFailed(Exception):
    """A check found something wrong; the message is the reason printed after FAIL."""


@dataclass
class Context:
    """What the checks share: the scratch folder, and the run that `train` leaves for `export-onnx`."""

    workdir: Path
    run_dir: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ the checks


def check_torch(ctx: Context) -> str:
    import torch

    a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    if float((a @ a.T).sum()) != 83.0:
        raise CheckFailed("a 2x3 matrix product gave the wrong sum")
    cuda = f"CUDA {torch.version.cuda} ({'a GPU is' if torch.cuda.is_available() else 'no GPU'} usable)"
    return f"torch {torch.__version__}, {cuda if torch.version.cuda else 'CPU build'}"


def check_torchvision_ops(ctx: Context) -> str:
    import torch

    try:
        import torchvision
        from torchvision.ops import nms
    except RuntimeError as e:  # torchvision registers its ops when imported: the same message, earlier
        raise CheckFailed(f"torchvision's compiled ops are missing ({e}); bundle torchvision/_C*") from e

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    try:
        kept = nms(boxes, scores, iou_threshold=0.5).tolist()
    except RuntimeError as e:  # "operator torchvision::nms does not exist": the compiled ops were not bundled
        raise CheckFailed(f"torchvision's compiled ops are missing ({e}); bundle torchvision/_C*") from e
    if kept != [0, 2]:
        raise CheckFailed(f"torchvision.ops.nms kept boxes {kept}, expected [0, 2]")
    return f"torchvision {torchvision.__version__}, ops.nms ran"


def _tiny_vocab(folder: Path) -> Path:
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "was", "great", "dull"]
    path = folder / "vocab.txt"
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


def _tiny_gpt2_config():
    from transformers import GPT2Config

    return GPT2Config(vocab_size=32, n_embd=16, n_layer=1, n_head=2, n_positions=16, bos_token_id=0, eos_token_id=0)


def check_transformers(ctx: Context) -> str:
    """Auto classes resolve their model modules lazily: build a tiny BERT and GPT-2 through them."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, BertConfig, BertTokenizerFast

    folder = ctx.workdir / "tokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab_file=str(_tiny_vocab(folder)))
    batch = tokenizer(["the film was great", "dull"], padding=True, return_tensors="pt")
    bert = AutoModelForSequenceClassification.from_config(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
    )
    gpt2 = AutoModelForCausalLM.from_config(_tiny_gpt2_config())
    with torch.no_grad():
        logits = bert(**batch).logits
        lm_logits = gpt2(torch.tensor([[1, 2, 3]])).logits
    if tuple(logits.shape) != (2, 2) or tuple(lm_logits.shape) != (1, 3, 32):
        raise CheckFailed(f"unexpected output shapes {tuple(logits.shape)} and {tuple(lm_logits.shape)}")
    return f"transformers {transformers.__version__}, BERT + tokenizer and GPT-2 through the Auto classes"


def check_peft(ctx: Context) -> str:
    import peft
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_config(_tiny_gpt2_config())
    model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], fan_in_fan_out=True))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if trainable == 0:
        raise CheckFailed("LoRA left no trainable parameters")
    return f"peft {peft.__version__}, LoRA adapters on GPT-2 ({trainable} trainable parameters)"


def check_safetensors(ctx: Context) -> str:
    import safetensors
    import torch
    from safetensors.torch import load_file, save_file

    path = ctx.workdir / "roundtrip.safetensors"
    save_file({"w": torch.arange(4.0)}, str(path))
    if load_file(str(path))["w"].tolist() != [0.0, 1.0, 2.0, 3.0]:
        raise CheckFailed("a tensor saved and loaded again came back different")
    return f"safetensors {safetensors.__version__}, save and load"


def check_onnxruntime(ctx: Context) -> str:
    """Run a one-node ONNX graph: proves onnx and onnxruntime's native library and CPU provider are there."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "double", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    providers = ort.get_available_providers()
    if "CPUExecutionProvider" not in providers:
        raise CheckFailed(f"onnxruntime has no CPU provider (it has {providers})")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"x": np.array([1.0, 2.5], dtype=np.float32)})[0]
    if out.tolist() != [2.0, 5.0]:
        raise CheckFailed(f"a one-node graph computed {out.tolist()}, expected [2.0, 5.0]")
    import onnxscript  # noqa: F401 - torch.onnx's dynamo exporter needs it

    return f"onnx {onnx.__version__}, onnxruntime {ort.__version__} ({', '.join(providers)}), onnxscript"


def check_qt(ctx: Context) -> str:
    import pyqtgraph as pg
    import PySide6

    from finetune_gui.gui.binding import binding_problem

    app = _application()
    problem = binding_problem()
    if problem is not None:
        raise CheckFailed(problem)
    plot = pg.PlotWidget()
    plot.plot([0.0, 1.0, 2.0], [1.0, 0.5, 0.25])
    plot.close()
    return f"PySide6 {PySide6.__version__} on the '{app.platformName()}' platform, pyqtgraph {pg.__version__}"


_APP = None


def _application():
    from PySide6.QtWidgets import QApplication

    global _APP
    app = QApplication.instance()
    if app is None:
        app = _APP = QApplication([sys.argv[0], "-platform", "offscreen"])  # kept: a collected one closes Qt
    elif not isinstance(app, QApplication):
        raise CheckFailed("a non-GUI Qt application already runs in this process")
    return app


def _process_events(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while True:
        app.processEvents()
        if time.monotonic() >= end:
            return
        time.sleep(0.01)


def check_main_window(ctx: Context) -> str:
    """Open the main window on the tiny setup with throwaway settings, show every page (the data page scans
    the images, the model page builds the layer tree), and wait for the work they start."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from finetune_gui.gui.main_window import MainWindow
    from finetune_gui.gui.state import AppState

    app = _application()
    settings = QSettings(str(ctx.workdir / "settings.ini"), QSettings.Format.IniFormat)
    state = AppState(config=tiny_training_config(_images(ctx), ctx.workdir / "runs"))
    window = MainWindow(state=state, settings=settings)
    try:
        window.show()
        _process_events(app, WINDOW_SETTLE_S)
        for key in list(window.pages):
            window.show_page(key)
            _process_events(app, 0.05)
        deadline = time.monotonic() + WORKERS_TIMEOUT_S
        while window.bridge.busy and time.monotonic() < deadline:
            _process_events(app, 0.05)
        if window.bridge.busy:
            raise CheckFailed(f"the pages' background work did not end within {WORKERS_TIMEOUT_S:.0f} s")
        picture = window.grab()
        if picture.isNull() or picture.width() == 0:
            raise CheckFailed("the window did not paint")
        errors = [box.text() for box in window.findChildren(QMessageBox, "errorDialog") if box.isVisible()]
        if errors:
            raise CheckFailed("a page showed an error: " + " | ".join(errors))
        return f"{len(window.pages)} pages shown, {picture.width()}x{picture.height()} painted"
    finally:
        window.bridge.stop()
        ended = window.bridge.shutdown(int(WORKERS_TIMEOUT_S * 1000))
        window.deleteLater()
        _process_events(app, 0.05)
        if not ended:
            raise CheckFailed("a worker thread of the window did not end")


def _make_images(root: Path, per_class: int = 6, size: int = 32) -> Path:
    from PIL import Image, ImageDraw

    colours = {"red-disc": (220, 40, 40), "green-box": (40, 200, 40), "blue-bars": (40, 40, 220)}
    for ci, (name, colour) in enumerate(colours.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), (10 * i, 10 * i, 10 * i))
            draw = ImageDraw.Draw(img)
            if ci == 0:
                draw.ellipse([4, 4, size - 4, size - 4], fill=colour)
            elif ci == 1:
                draw.rectangle([6, 6, size - 6, size - 6], fill=colour)
            else:
                for x in range(0, size, 6):
                    draw.line([x, 0, x, size], fill=colour, width=2)
            img.save(root / name / f"{i}.png")
    return root


def _images(ctx: Context) -> Path:
    folder = ctx.workdir / "images"
    return folder if folder.is_dir() else _make_images(folder)


def tiny_training_config(data: Path, output: Path):
    """One optimiser step of a random-init ResNet-18 at 32 px on the CPU: seconds, and no download."""
    from finetune_gui.config import validate_dict

    return validate_dict(
        {
            "name": "self-test",
            "task": {"kind": "image-classification"},
            "data": {"path": str(data), "image_size": 32, "val_fraction": 0.34, "test_fraction": 0.17},
            "model": {"name": "resnet18", "pretrained": False, "allow_random_init": True, "freeze": "none"},
            "augment": {"random_resized_crop": False, "hflip": 0.0},
            "train": {
                "epochs": 1,
                "max_steps": 1,
                "batch_size": 4,
                "device": "cpu",
                "precision": "fp32",
                "log_every": 1,
            },
            "checkpoint": {"output_dir": str(output), "run_name": "self-test"},
        },
        source="self-test",
    )


def check_train(ctx: Context) -> str:
    from finetune_gui.core.training.engine import fit

    events: list = []
    config = tiny_training_config(_images(ctx), ctx.workdir / "runs")
    result = fit(config, events.append)
    if result.status != "completed":
        raise CheckFailed(f"training ended '{result.status}': {result.error}")
    if not (result.run_dir / "model.safetensors").is_file():
        raise CheckFailed(f"the run folder {result.run_dir} has no model.safetensors")
    ctx.run_dir = result.run_dir
    steps = [e for e in events if type(e).__name__ == "StepMetrics"]
    loss = f", loss {steps[-1].loss:.3f}" if steps else ""
    return f"resnet18 at 32 px, {len(steps)} step{'' if len(steps) == 1 else 's'}{loss}"


def check_export_onnx(ctx: Context) -> str:
    try:
        from finetune_gui.core.export import export_run
    except ImportError as e:
        raise CheckFailed(f"finetune_gui.core.export.export_run cannot be imported ({e})") from e
    if ctx.run_dir is None:
        raise CheckFailed("no trained run to export (the train check failed)")
    report = export_run(ctx.run_dir, ["onnx"], output=ctx.workdir / "export")
    results = [r for r in report.results if r.format == "onnx"]
    if not results:
        raise CheckFailed("export_run reported no ONNX result")
    r = results[0]
    if not report.ok or not r.passed:
        raise CheckFailed(f"the ONNX export failed its verification: {r.message}")
    if not Path(r.path).exists():
        raise CheckFailed(f"the exported file {r.path} is missing")
    top1 = "" if r.top1_agreement is None else f", top-1 agreement {r.top1_agreement:.0%}"
    batches = "/".join(str(b) for b in r.batch_sizes)
    return f"verified against the eager model at batch {batches}: max abs diff {r.max_abs_diff:.2e}{top1}"


CHECKS: list[tuple[str, Callable[[Context], str]]] = [
    ("torch", check_torch),
    ("torchvision-ops", check_torchvision_ops),
    ("transformers", check_transformers),
    ("peft", check_peft),
    ("safetensors", check_safetensors),
    ("onnxruntime", check_onnxruntime),
    ("qt", check_qt),
    ("main-window", check_main_window),
    ("train", check_train),
    ("export-onnx", check_export_onnx),
]


# ------------------------------------------------------------------------------------------ running them


def prepare_environment(environ: dict | None = None) -> None:
    """Offscreen Qt and no network: the self-test must pass on a machine with no display and no internet."""
    env = os.environ if environ is None else environ
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("FINETUNE_GUI_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")


def _reason(error: BaseException) -> str:
    if isinstance(error, CheckFailed):
        return str(error)
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    root, seen = error, {id(error)}
    while (inner := root.__cause__ or root.__context__) is not None and id(inner) not in seen:
        root = inner  # the first error, e.g. the one behind transformers' "Could not import module ..."
        seen.add(id(root))
    cause = f"; caused by {type(root).__name__}: {root}" if root is not error else ""
    return f"{type(error).__name__}: {error}{at}{cause}"


def run_checks(checks=None, out: TextIO | None = None, workdir: Path | None = None) -> int:
    """Run the checks in order, print a line for each, and return the number that failed."""
    out = out or sys.stdout
    checks = CHECKS if checks is None else checks
    frozen = "frozen bundle" if getattr(sys, "frozen", False) else "from source"
    print(
        f"finetune-gui {__version__} self-test ({frozen}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()})",
        file=out,
        flush=True,
    )
    failed = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="finetune-gui-selftest-", dir=workdir) as tmp:
        ctx = Context(workdir=Path(tmp))
        width = max(len(name) for name, _ in checks)
        for name, check in checks:
            t0 = time.perf_counter()
            try:
                detail = check(ctx)
            except Exception as e:  # noqa: BLE001 - every failure becomes a FAIL line; the next check still runs
                failed += 1
                print(f"FAIL  {name:<{width}}  {_reason(e)}", file=out, flush=True)
                continue
            print(f"ok    {name:<{width}}  {detail}  [{time.perf_counter() - t0:.1f} s]", file=out, flush=True)
    total = time.perf_counter() - started
    verdict = "all checks passed" if not failed else f"{failed} of {len(checks)} checks FAILED"
    print(f"self-test: {verdict} in {total:.1f} s", file=out, flush=True)
    return failed


def main() -> int:
    """The `--self-test` command: 0 when every check passed, 1 otherwise."""
    prepare_environment()
    # A windowed Windows build has no console (sys.stdout is None): its output then goes nowhere, but the exit
    # code still tells; the installers ship the console executable finetune-gui-cli for reading the lines.
    out = sys.stdout if sys.stdout is not None else open(os.devnull, "w", encoding="utf-8")
    return 1 if run_checks(out=out) else 0
