"""A small sharded job for tests/test_distributed.py; runs alone or under torchrun.

usage: python _dist_job.py RESULT.pt [SHARD_DIR] [--crash-at SHARD_ID] [--device auto|cpu|cuda]
Rank 0 saves the merged logits of a seeded model over 37 seeded inputs to RESULT.pt. Every rank appends
the shards it computed (not resumed) to RESULT.pt.calls-<rank>.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from rtool.engine import atomic_save_torch, cleanup, current, generator, resolve_device, run_sharded

N_ITEMS, SHARD_SIZE = 37, 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("result")
    parser.add_argument("shard_dir", nargs="?")
    parser.add_argument("--crash-at", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    ctx = current()
    device = resolve_device(args.device)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(32, 10)).eval().to(device)
    inputs = torch.randn(N_ITEMS, 3, 12, 12, generator=generator(123)).to(device)
    computed: list[int] = []

    def compute(start: int, stop: int) -> dict:
        shard_id = start // SHARD_SIZE
        if shard_id == args.crash_at:
            raise RuntimeError(f"simulated crash in shard {shard_id}")
        computed.append(shard_id)
        calls_file = Path(f"{args.result}.calls-{ctx.rank}.json")
        calls_file.write_text(json.dumps(computed))
        with torch.no_grad():
            return {"index": torch.arange(start, stop), "logits": model(inputs[start:stop])}

    def merge(parts: list[dict]) -> dict:
        return {key: torch.cat([part[key] for part in parts]) for key in ("index", "logits")}

    merged = run_sharded(N_ITEMS, compute, out_dir=args.shard_dir, job_key="logits-v1", shard_size=SHARD_SIZE,
                         merge=merge, quiet=True)
    if ctx.is_main:
        atomic_save_torch(args.result, {**merged, "world_size": ctx.world_size})
    else:
        assert merged is None
    cleanup()


if __name__ == "__main__":
    main()
