"""TorchScript: the wrapped model traced with torch.jit.trace, loaded back with torch.jit.load.

Tracing records the operations run on one example input, so the graph has no Python control flow left; the
verification batches (other batch sizes, other sequence lengths, padding) show that it still generalises.
The example inputs are not stored in the file (no user data in the artefact).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def save(source, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python code in transformers
        traced = torch.jit.trace(source.deployable, source.example, check_trace=False, _store_inputs=False)
    traced.save(str(path))


def load(path: Path, source=None) -> Callable[..., torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated": still how TorchScript loads
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run
