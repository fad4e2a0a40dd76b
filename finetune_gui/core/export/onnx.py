"""ONNX: the wrapped model through torch.onnx's dynamo exporter (torch.export underneath), checked with ONNX Runtime.

Dynamic axes: batch, and sequence length for text. Opset 20. Models under 1.5 GB of weights are written as one
self-contained model.onnx; larger ones keep their weights next to it in model.onnx.data (protobuf's 2 GB limit).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from finetune_gui.core.errors import ExportError

OPSET = 20
SINGLE_FILE_LIMIT = 1_500_000_000  # bytes of weights


def _require(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ExportError(
            f"ONNX export needs the '{module}' package, which is not installed; install the export extra: "
            "pip install 'finetune-gui[export]' (or: pip install onnx onnxruntime onnxscript)"
        )


def save(source, path: Path) -> None:
    for module in ("onnx", "onnxscript"):
        _require(module)
    size = sum(p.numel() * p.element_size() for p in source.deployable.parameters())
    chatter = io.StringIO()  # the exporter prints its steps; they are not for the user
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(chatter):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            source.deployable,
            source.example,
            str(path),
            dynamo=True,
            input_names=list(source.input_names),
            output_names=["logits"],
            dynamic_shapes=source.dynamic_shapes(),
            opset_version=OPSET,
            external_data=size > SINGLE_FILE_LIMIT,
            verbose=False,
        )


def session(path: Path):
    """An ONNX Runtime CPU session for `path` (its default graph optimisations, as a deployment would run it)."""
    _require("onnxruntime")
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def load(path: Path, source=None) -> Callable[..., torch.Tensor]:
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: x.detach().cpu().numpy() for name, x in zip(names, inputs)}
        return torch.from_numpy(sess.run(None, feed)[0])

    return run
