"""How an epoch is shared between processes: every global batch split near-equally, in the same seeded order
one process would use, with each slice's loss weighted so the ranks' average is the global batch's mean."""

from __future__ import annotations

from finetune_gui.core.distributed.context import DistContext, from_env
from finetune_gui.core.distributed.sharding import ShardedBatches, slice_bounds
from finetune_gui.core.training.sampling import EpochSampler


def batches_of(n: int, batch: int, world: int, start: int = 0, epoch: int = 0) -> list[list[list[int]]]:
    """Each rank's batches of sample indices."""
    out = []
    for rank in range(world):
        order = EpochSampler(n, seed=7)
        order.set_epoch(epoch, start)
        out.append([[i for i, _ in b] for b in ShardedBatches(order, batch, DistContext(rank, world, rank))])
    return out


def one_process(n: int, batch: int, start: int = 0, epoch: int = 0) -> list[list[int]]:
    order = EpochSampler(n, seed=7)
    order.set_epoch(epoch, start)
    keys = [i for i, _ in order]
    return [keys[k : k + batch] for k in range(0, len(keys), batch)]


def test_the_ranks_slices_of_each_batch_put_together_are_one_processs_batch():
    ranks = batches_of(37, 8, 3, epoch=2)
    single = one_process(37, 8, epoch=2)
    assert len({len(r) for r in ranks}) == 1, "every rank must take the same number of steps"
    for step, whole in enumerate(single):
        assert sum((r[step] for r in ranks), []) == whole


def test_slices_differ_in_size_by_at_most_one():
    assert [slice_bounds(10, DistContext(r, 3, r)) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]


def test_a_resumed_epoch_starts_at_the_same_global_batch_whatever_the_world_size():
    # a checkpoint records how many samples of the epoch were used (16 = two batches of 8)
    two = batches_of(40, 8, 2, start=16, epoch=1)
    assert sum((r[0] for r in two), []) == one_process(40, 8, start=16, epoch=1)[0]
    assert len(two[0]) == 3


def test_a_last_batch_smaller_than_the_number_of_processes_is_left_out_on_every_rank():
    order = EpochSampler(33, seed=7)  # 4 batches of 8 and one of 1: the 1 is already dropped for BatchNorm
    sharded = ShardedBatches(order, 8, DistContext(0, 4, 0))
    assert len(sharded) == 4 and sharded.dropped_tail == 0
    sharded = ShardedBatches(EpochSampler(34, seed=7), 8, DistContext(0, 4, 0))  # a last batch of 2 for 4 ranks
    assert len(sharded) == 4 and sharded.dropped_tail == 2


def test_the_global_batch_size_of_the_last_batch_is_what_is_left():
    sharded = ShardedBatches(EpochSampler(20, seed=7), 8, DistContext(1, 2, 1))
    assert [sharded.global_batch_size(b) for b in range(3)] == [8, 8, 4]


def test_a_process_started_without_torchrun_is_a_world_of_one():
    ctx = from_env({})
    assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main) == (0, 1, False, True)
    assert from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}).is_main is False
    assert from_env({"RANK": "3"}) == from_env({}), "RANK without WORLD_SIZE is not torchrun's"
