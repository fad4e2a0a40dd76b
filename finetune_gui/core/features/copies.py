"""Augmented copies for the feature cache ("K augmented copies extracted once").

When random per-sample augmentation of the training images is all that keeps a run off the cache and
train.feature_cache_aug_copies is K >= 1, the training split's features are extracted K times: copy k of sample
i is the sample drawn with the run's seeded augmentation stream of epoch k (sampling.sample_seed), and epoch e
trains on copy e mod K. For e < K the run therefore trains on exactly the augmented images live passes would
have given it; later epochs cycle through the same K copies. A copy past the last epoch the cache serves would
never be read, so at most that many are extracted (train.epochs; lp_epochs with the lp-ft recipe, whose probe
stage alone trains from the cache). Validation and test features stay un-augmented.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from finetune_gui.config import RunConfig
from finetune_gui.core.features.cut import per_sample_augments
from finetune_gui.core.training.sampling import SeededSamples


def copies_to_extract(config: RunConfig) -> int:
    """How many augmented copies of each training sample the cache holds (0: one plain copy, as without the
    knob, because nothing random acts per sample or the knob is off)."""
    wanted = config.train.feature_cache_aug_copies
    if not wanted or not per_sample_augments(config):
        return 0
    return min(wanted, cached_epochs(config))


def cached_epochs(config: RunConfig) -> int:
    """The epochs that train from the cache: all, or the probe stage of lp-ft."""
    return config.train.lp_epochs if config.train.recipe == "lp-ft" else config.train.epochs


def copies_key(config: RunConfig, copies: int) -> dict[str, Any]:
    """What makes the copies besides the files and the frozen weights: their count, the augmentation settings
    and the seed of the augmentation stream."""
    return {"copies": copies, "augment": config.augment.model_dump(mode="json"), "seed": config.train.seed}


def copy_row(index: int, epoch: int, samples: int, copies: int) -> int:
    """The cache row that training sample `index` is read from in `epoch`: copy `epoch mod copies`."""
    return (epoch % copies) * samples + index


class AugmentedCopy(Dataset):
    """Copy `copy` of every training sample: each drawn with its seeded stream as if in epoch `copy`."""

    def __init__(self, dataset: Dataset, seed: int, copy: int):
        self.seeded, self.copy = SeededSamples(dataset, seed), copy

    def __len__(self) -> int:
        return len(self.seeded)

    def __getitem__(self, index: int) -> Any:
        return self.seeded[(index, self.copy)]


def copies_words(copies: int, config: RunConfig) -> str:
    """The log's account of the copies, e.g. '4 augmented copies of each training image, extracted once'."""
    wanted = config.train.feature_cache_aug_copies
    capped = (
        f" (train.feature_cache_aug_copies is {wanted}; the cache serves {copies} epochs)" if copies < wanted else ""
    )
    noun = "copy" if copies == 1 else "copies"
    return (
        f"{copies} augmented {noun} of each training image, extracted once{capped}; epoch e trains on copy "
        f"e mod {copies}"
    )
