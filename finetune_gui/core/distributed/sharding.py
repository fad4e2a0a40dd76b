"""How one epoch's samples are shared between ranks so that N processes train as one would.

Every rank draws the same seeded order (`EpochSampler`), cuts it into the config's global batches, and takes
its own near-equal slice of each. The loss of a slice is weighted by its share of the global batch, so the
averaged gradient equals one process's gradient over the whole batch even when the batch does not divide.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Sampler

from finetune_gui.core import plan
from finetune_gui.core.distributed.context import DistContext
from finetune_gui.core.training.sampling import EpochSampler


def slice_bounds(size: int, ctx: DistContext) -> tuple[int, int]:
    """The [start, end) of this rank's near-equal slice of `size` items (sizes differ by at most one)."""
    return ctx.rank * size // ctx.world_size, (ctx.rank + 1) * size // ctx.world_size


class ShardedBatches(Sampler[list[tuple[int, int]]]):
    """Batches of (index, epoch) keys: this rank's slice of each global batch of the epoch's seeded order.

    A global batch smaller than the number of ranks would leave a rank empty-handed; the epoch's last batch is
    then dropped on every rank (`dropped_tail` says how many samples)."""

    def __init__(self, order: EpochSampler, batch_size: int, ctx: DistContext):
        self.order, self.batch_size, self.ctx = order, batch_size, ctx
        n = order.n
        self.n_batches = plan.batches_per_epoch(n, batch_size)
        last = n - (self.n_batches - 1) * batch_size if self.n_batches else 0
        self.dropped_tail = 0
        if 0 < min(last, batch_size) < ctx.world_size:
            self.n_batches -= 1
            self.dropped_tail = last

    def global_batch_size(self, batch_index: int) -> int:
        """Samples in the epoch's `batch_index`-th global batch, over all ranks."""
        return min(self.batch_size, self.order.n - batch_index * self.batch_size)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        keys = list(self.order)  # the rest of the epoch: resumes start at a global batch's first sample
        first = self.order.start // self.batch_size
        for b in range(first, self.n_batches):
            chunk = keys[(b - first) * self.batch_size : (b - first + 1) * self.batch_size]
            lo, hi = slice_bounds(len(chunk), self.ctx)
            yield chunk[lo:hi]

    def __len__(self) -> int:
        return max(0, self.n_batches - self.order.start // self.batch_size)
