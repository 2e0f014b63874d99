"""Plumbing shared by every analysis: devices and precision, seeding, progress bars, atomic writes,
torch.distributed sharding with resumable per-shard results, and the cache directory."""
from rtool.engine.device import autocast, channels_last_model, parse_dtype, resolve_device
from rtool.engine.distributed import (
    DistContext,
    barrier,
    broadcast_from_rank0,
    cleanup,
    current,
    gather_to_rank0,
    shard_bounds,
)
from rtool.engine.hashing import canonical_json, stable_hash
from rtool.engine.metrics import top_k_hits
from rtool.engine.io import (
    atomic_path,
    atomic_save_torch,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
)
from rtool.engine.paths import cache_dir
from rtool.engine.progress import progress, progress_enabled
from rtool.engine.seed import generator, seed_everything
from rtool.engine.sharded import run_sharded, shard_dir, to_cpu

__all__ = [
    "DistContext", "atomic_path", "atomic_save_torch", "atomic_write_bytes", "atomic_write_json",
    "atomic_write_text", "autocast", "barrier", "channels_last_model", "broadcast_from_rank0", "cache_dir", "canonical_json", "cleanup",
    "current", "gather_to_rank0", "generator", "parse_dtype", "progress", "progress_enabled", "resolve_device",
    "run_sharded", "seed_everything", "shard_bounds", "shard_dir", "stable_hash", "to_cpu",
]
