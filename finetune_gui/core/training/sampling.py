"""The order training samples come in: a seeded shuffle per epoch that a resumed run can start part-way
through, and samples whose augmentation draws from their own seeded random stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """A seeded shuffle per epoch that can start part-way through, so a resumed run sees the same order.

    It yields (index, epoch) keys; `SeededSamples` turns them into samples with their own random streams.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return iter([(i, epoch) for i in self.order()[self.start :]])

    def __len__(self) -> int:
        return max(0, self.n - self.start)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation in one epoch."""
    return ((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (2**63 - 1)


class SeededSamples(Dataset):
    """Training samples, each drawn with its own random stream seeded from (seed, epoch, index).

    Augmentation then draws the same numbers whichever DataLoader worker loads a sample and wherever a
    resumed run starts within an epoch, so num_workers and interruptions do not change the result. The
    global torch RNG (dropout, MixUp) is left as it was.
    """

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, epoch = key
        with torch.random.fork_rng(devices=[]):
            # the CPU generator only: torch.manual_seed would also seed CUDA, outside what fork_rng restores
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            return self.dataset[index]
