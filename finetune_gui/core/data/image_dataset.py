"""The image dataset: paths and targets, each image decoded when it is read; a file that fails to decode is
reported and the next image stands in for it."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.utils.data import Dataset

from finetune_gui.core.data.common import Problem
from finetune_gui.core.data.image_files import load_rgb
from finetune_gui.core.errors import DataError

log = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """Images with class indices, multi-hot vectors or regression values. Holds paths only (picklable)."""

    def __init__(self, paths: list[str], targets: list[Any], transform: Any, target_kind: str, num_labels: int = 0):
        self.paths = list(paths)
        self.targets = list(targets)  # int class / list[int] label indices / float
        self.transform = transform
        self.target_kind = target_kind  # "class", "multilabel" or "regression"
        self.num_labels = num_labels
        self.failures: list[Problem] = []  # images that failed to decode while training (this process)

    def __len__(self) -> int:
        return len(self.paths)

    def target(self, i: int) -> Any:
        y = self.targets[i]
        if self.target_kind == "class":
            return int(y)
        if self.target_kind == "multilabel":
            v = torch.zeros(self.num_labels, dtype=torch.float32)
            if y:
                v[list(y)] = 1.0
            return v
        return torch.tensor([float(y)], dtype=torch.float32)

    def load_image(self, j: int) -> Any:
        """Image j as the transform takes it (here: decoded from its file every time)."""
        return load_rgb(self.paths[j])

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        n = len(self.paths)
        for step in range(min(n, 16)):
            j = (i + step) % n
            try:
                image = self.load_image(j)
            except Exception as e:  # noqa: BLE001 - fall back to the next image, deterministically
                problem = Problem(
                    self.paths[j],
                    f"could not be decoded while training ({type(e).__name__}: {e}); "
                    "the next image was used instead — delete or replace this file",
                )
                if problem not in self.failures:
                    self.failures.append(problem)
                    log.warning("%s", problem)
                continue
            x = self.transform(image) if self.transform is not None else image
            return x, self.target(j)
        raise DataError(f"{self.paths[i]}: this and the following images could not be decoded; check the data folder")
