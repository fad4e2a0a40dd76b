"""torch.export: the wrapped model as an ExportedProgram (.pt2) with a dynamic batch (and sequence) axis.

Saved with torch.export.save, loaded with torch.export.load. The program's example inputs are dropped before
saving, so no validation sample ends up in the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def save(source, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(
            source.deployable, source.example, dynamic_shapes=source.dynamic_shapes(), strict=False
        )
    program._example_inputs = None  # no user data in the artefact
    torch.export.save(program, str(path))


def load(path: Path, source=None) -> Callable[..., torch.Tensor]:
    module = torch.export.load(str(path)).module()

    def run(*inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(*inputs)

    return run
