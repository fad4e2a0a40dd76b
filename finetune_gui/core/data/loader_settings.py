"""DataLoader settings chosen for the machine and the data: worker processes (kept between epochs or not),
pinned memory and prefetching, with the reason in words for the run's log. data.num_workers overrides the
worker count."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

#: Below this many samples an epoch is too short for worker start-up to pay off.
SMALL_DATASET = 1_000


@dataclass(frozen=True)
class LoaderSettings:
    num_workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int | None = None  # batches each worker loads ahead (None with 0 workers)
    persistent_workers: bool = False  # keep the workers between epochs
    why: str = ""

    def describe(self) -> str:
        """E.g. "0 loader workers (2 CPU cores …), pin_memory off"."""
        workers = f"{self.num_workers} loader worker{'' if self.num_workers == 1 else 's'}"
        if self.why:
            workers += f" ({self.why})"
        return f"{workers}, pin_memory {'on' if self.pin_memory else 'off'}"


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def choose_loader_settings(
    requested: int | None,
    *,
    device_type: str,
    decoded: str,
    samples: int,
    cores: int | None = None,
    start_method: str | None = None,
) -> LoaderSettings:
    """Settings for the run's loaders.

    requested: data.num_workers (None = choose). decoded: where images are decoded once ("memory", "disk"),
    "off" (decoded at every read) or "tokens" (text, tokenised up front). samples: in the training and
    validation splits.
    Training on the CPU, worker processes take cores from the model, so they are used only where decoding
    at every read is the bottleneck on a machine with cores to spare; on an accelerator they prepare
    batches while it computes. Pinned memory speeds copies to CUDA only.
    """
    cores = cores or usable_cores()
    start_method = start_method or multiprocessing.get_start_method(allow_none=True) or "fork"
    if requested is not None:
        workers, why = requested, "data.num_workers"
    elif samples < SMALL_DATASET:
        workers, why = 0, f"{samples} samples: starting workers would cost more than they save"
    elif decoded == "tokens":
        workers, why = 0, "the samples are token ids in memory already"
    elif decoded == "memory" and start_method != "fork":
        workers, why = 0, f"decoded images in memory are shared with forked workers only, not {start_method}ed ones"
    elif device_type == "cpu":
        if decoded != "off" or cores <= 4:
            reason = "images decoded once need little work" if decoded != "off" else f"{cores} CPU cores"
            workers, why = 0, f"{reason}; the model trains on all cores"
        else:
            workers, why = min(4, cores // 4), f"decoding at every read, {cores} CPU cores shared with the model"
    elif cores <= 2:
        workers, why = 0, f"{cores} CPU cores"
    elif decoded != "off":
        workers, why = min(4, cores // 2), f"augmenting decoded images while the {device_type} device computes"
    else:
        workers, why = min(8, cores - 1), f"decoding at every read while the {device_type} device computes"
    return LoaderSettings(
        num_workers=workers,
        pin_memory=device_type == "cuda",
        prefetch_factor=(4 if decoded != "off" else 2) if workers else None,
        persistent_workers=workers > 0,
        why=why,
    )
