"""Which process of a torchrun job this is, joining its process group, and the few collectives the loop needs.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/PORT for the c10d store); a process started
without them is a world of one, and every function here is then a no-op that costs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

TIMEOUT_ENV = "FINETUNE_GUI_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job: rank 0 of world_size processes; local_rank picks its GPU."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistContext()


def from_env(environ: dict[str, str] | None = None) -> DistContext:
    """The context torchrun's variables describe (a world of one without them)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:  # RANK alone (set by other tools) does not make a job
        return SINGLE
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise RuntimeError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers; start distributed runs with torchrun "
            "(see docs/distributed.md)"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise RuntimeError(f"RANK {rank} does not fit WORLD_SIZE {world}; start distributed runs with torchrun")
    return DistContext(rank, world, local)


def join(requested_device: str = "auto") -> DistContext:
    """Join torchrun's process group (once per process): NCCL when this run trains on CUDA, gloo otherwise.

    On CUDA each process takes the GPU of its LOCAL_RANK, so `devices.pick_device("auto")` finds it."""
    ctx = from_env()
    if not ctx.enabled or dist.is_initialized():
        return ctx
    on_cuda = torch.cuda.is_available() and requested_device.strip().lower() in ("auto", "cuda", "")
    if on_cuda:
        torch.cuda.set_device(ctx.local_rank % torch.cuda.device_count())
    timeout = timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))
    dist.init_process_group(backend="nccl" if on_cuda else "gloo", timeout=timeout)
    return ctx


def leave(ctx: DistContext) -> None:
    """Leave the process group joined by `join` (every rank calls it at the end of the run)."""
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def _device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def sum_all(ctx: DistContext, values: list[float]) -> list[float]:
    """Each value summed over the ranks, in float64 so counts and loss sums add exactly as one process would."""
    if not ctx.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """True on every rank when it is true on any: a stop asked of one process stops them all at one step."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_main(ctx: DistContext, value: Any) -> Any:
    """Rank 0's `value`, on every rank (a picklable object)."""
    if not ctx.enabled:
        return value
    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_all(ctx: DistContext, value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    if not ctx.enabled:
        return [value]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()
