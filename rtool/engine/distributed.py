"""torch.distributed in the few shapes rtool needs; every function is a no-op in a single process.

Launch with `torchrun --nproc-per-node N ...`: torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
MASTER_PORT, and `current()` joins the process group the first time it is called.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    world_size: int
    local_rank: int
    is_distributed: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _backend() -> str:
    # Objects gathered with *_object collectives travel over gloo (CPU) even when NCCL serves CUDA tensors.
    if torch.cuda.is_available() and dist.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


def current() -> DistContext:
    """This process's place in the job; joins the process group once when launched by torchrun."""
    world_size = _env_int("WORLD_SIZE", 1)
    if "RANK" not in os.environ or world_size <= 1 or not dist.is_available():
        return DistContext(rank=0, world_size=1, local_rank=0, is_distributed=False)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        dist.init_process_group(backend=_backend())
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank,
                       is_distributed=True)


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous [start, stop) of `n` items for `rank` of `world`; sizes differ by at most one, lower ranks larger."""
    if n < 0 or world < 1 or not 0 <= rank < world:
        raise ValueError(f"shard_bounds needs n >= 0 and 0 <= rank < world, got n={n}, rank={rank}, world={world}")
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def gather_to_rank0(obj: Any) -> list[Any] | None:
    """Every rank's `obj` (picklable) as a list in rank order on rank 0; None on the other ranks."""
    ctx = current()
    if not ctx.is_distributed:
        return [obj]
    gathered: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def broadcast_from_rank0(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (picklable)."""
    ctx = current()
    if not ctx.is_distributed:
        return obj
    box = [obj if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank."""
    if current().is_distributed:
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (call at the end of a torchrun job to avoid shutdown warnings)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
