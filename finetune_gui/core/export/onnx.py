"""ONNX: the wrapped model through torch.onnx's dynamo exporter (torch.export underneath), checked with ONNX Runtime.

Dynamic axes: batch, and sequence length for text. Opset 20. Models under 1.5 GB of weights are written as one
self-contained model.onnx; larger ones keep their weights next to it in model.onnx.data (protobuf's 2 GB limit).

Hugging Face models are traced with their "eager" attention (MatMul, Softmax, MatMul) instead of PyTorch's
scaled_dot_product_attention: the SDPA trace carries a NaN guard for fully padded rows into the graph (IsNaN and
Where on every attention matrix, 5% of ONNX Runtime's time at batch 32), which eager attention does not need. Both
compute the same function; verification compares the graph with the model as trained (SDPA).
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
    with (
        torch.no_grad(),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(chatter),
        plain_attention(source.deployable),
    ):
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


@contextlib.contextmanager
def plain_attention(wrapper: torch.nn.Module):
    """Within the block, the Hugging Face model inside `wrapper` (if any) uses eager attention; restored after."""
    model = getattr(wrapper, "model", None)
    config = getattr(model, "config", None)
    before = getattr(config, "_attn_implementation", None)
    if before in (None, "eager") or not hasattr(model, "set_attn_implementation"):
        yield
        return
    try:
        model.set_attn_implementation("eager")
    except (ValueError, ImportError):  # a model without an eager path: trace it as it is
        yield
        return
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def session(path: Path, threads: int | None = None):
    """An ONNX Runtime CPU session for `path` with the app's session options (core.export.runtime)."""
    _require("onnxruntime")
    from finetune_gui.core.export.runtime import cpu_session

    return cpu_session(path, threads)


def load(path: Path, source=None) -> Callable[..., torch.Tensor]:
    sess = session(path)
    names = [i.name for i in sess.get_inputs()]

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        feed = {name: x.detach().cpu().numpy() for name, x in zip(names, inputs)}
        return torch.from_numpy(sess.run(None, feed)[0])

    return run
