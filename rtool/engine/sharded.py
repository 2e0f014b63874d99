"""Run a per-item computation over a dataset in fixed shards: spread over torchrun ranks, resumable on disk.

Shard i always covers items [i*shard_size, (i+1)*shard_size) whatever the number of ranks, so a shard
written by a 4-rank run can be reused by a 1-rank rerun and the merged result does not depend on how the
work was spread. Each rank takes a contiguous block of shards; rank 0 merges them in shard order.
"""
from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from rtool.engine.distributed import current, gather_to_rank0, shard_bounds
from rtool.engine.io import atomic_save_torch
from rtool.engine.progress import progress

R = TypeVar("R")

_JOB_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def shard_dir(out_dir: str | Path, job_key: str) -> Path:
    """Where the shards of `job_key` live under `out_dir`."""
    return Path(out_dir) / "shards" / job_key


def to_cpu(obj: Any) -> Any:
    """Move tensors inside lists/tuples/dicts to the CPU (shards are saved and gathered from there)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {key: to_cpu(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [to_cpu(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(to_cpu(value) for value in obj)
    return obj


def _load_shard(path: Path, start: int, stop: int) -> tuple[bool, Any]:
    """(True, result) when `path` holds this exact shard; (False, None) when it must be recomputed."""
    if not path.exists():
        return False, None
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged shard is recomputed, not fatal
        warnings.warn(f"recomputing shard {path}: it could not be loaded ({type(exc).__name__}: {exc})", stacklevel=3)
        return False, None
    if not isinstance(record, dict) or record.get("start") != start or record.get("stop") != stop:
        return False, None
    return True, record.get("result")


def run_sharded(n_items: int, compute: Callable[[int, int], R], *, out_dir: str | Path | None, job_key: str,
                shard_size: int, merge: Callable[[list[R]], R], quiet: bool = False,
                desc: str = "") -> R | None:
    """Compute `compute(start, stop)` for every shard of `range(n_items)` and merge the results on rank 0.

    compute: returns the result for items [start, stop); keep it to tensors, dicts, lists and plain values
        (it is saved with torch.save and loaded with weights_only=True), and make it depend only on the items.
    out_dir: shards are kept under `out_dir/shards/<job_key>/<shard id>.pt` and reused on a rerun
        (resume after a crash); None writes and resumes nothing.
    job_key: identifies everything that changes the results (hash it, e.g. with rtool.engine.stable_hash),
        so shards of another configuration are never mixed in.
    merge: receives the results of all shards in item order.
    Returns merge(results) on rank 0 and None on the other ranks.
    """
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if not _JOB_KEY.fullmatch(job_key):
        raise ValueError(f"job_key {job_key!r} must be a short file-name-safe string (letters, digits, . _ -)")

    ctx = current()
    n_shards = math.ceil(n_items / shard_size)
    first, last = shard_bounds(n_shards, ctx.rank, ctx.world_size)
    directory = shard_dir(out_dir, job_key) if out_dir is not None else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)

    mine: list[tuple[int, Any]] = []
    my_items = min(last * shard_size, n_items) - min(first * shard_size, n_items)
    bar = progress(total=my_items, desc=desc or job_key, quiet=quiet, unit="item")
    try:
        for shard_id in range(first, last):
            start, stop = shard_id * shard_size, min((shard_id + 1) * shard_size, n_items)
            path = directory / f"{shard_id:06d}.pt" if directory is not None else None
            found, result = _load_shard(path, start, stop) if path is not None else (False, None)
            if not found:
                result = to_cpu(compute(start, stop))
                if path is not None:
                    atomic_save_torch(path, {"start": start, "stop": stop, "result": result})
            mine.append((shard_id, result))
            bar.update(stop - start)
    finally:
        bar.close()

    gathered = gather_to_rank0(mine)
    if gathered is None:
        return None
    ordered = sorted((pair for part in gathered for pair in part), key=lambda pair: pair[0])
    return merge([result for _, result in ordered])
