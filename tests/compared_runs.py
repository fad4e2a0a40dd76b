"""Three tiny real runs to list and compare (the tiny CNN of tests/faults, two epochs each): they differ in the
learning rate, and one also in the batch size."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_image_folder
from tests.factories import train_run
from tests.faults.helpers import image_sections, register_tinynet, unregister_tinynet

#: run name -> what it changes
VARIANTS = {
    "lr-high": {"train": {"lr": 3e-2}},
    "lr-mid": {"train": {"lr": 1e-2}},
    "lr-low-batch-8": {"train": {"lr": 1e-3, "batch_size": 8}},
}


def train_three_runs(root: Path) -> list[Path]:
    """The three runs, trained under root/runs, in VARIANTS order."""
    images = make_image_folder(root / "images")
    added = register_tinynet()
    try:
        return [train_run(root, image_sections(images, name=name, **change)) for name, change in VARIANTS.items()]
    finally:
        if added:
            unregister_tinynet()
