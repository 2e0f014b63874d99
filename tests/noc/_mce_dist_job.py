"""A small `rtool.noc.run_mce` job for test_mce_distributed.py; runs alone or under torchrun.

usage: python _mce_dist_job.py RESULT.pt [SHARD_DIR]
Rank 0 saves the per-condition predictions, the errors and the mCE of a seeded CNN on 23 seeded images.
"""
from __future__ import annotations

import sys

import torch
from torch import nn

from rtool.engine import atomic_save_torch, cleanup, current
from rtool.noc import MceSettings, TensorImages, run_mce


def main() -> None:
    result_path = sys.argv[1]
    shard_dir = sys.argv[2] if len(sys.argv) > 2 else None
    ctx = current()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(32, 4)).eval()
    g = torch.Generator().manual_seed(5)
    images = (torch.rand(23, 3, 24, 24, generator=g) * 255).to(torch.uint8)
    source = TensorImages(images, torch.arange(23) % 4, ["a", "b", "c", "d"], (0.5,) * 3, (0.25,) * 3)
    settings = MceSettings(corruptions=("brightness", "rain", "hue"), batch_size=4, shard_size=5)
    result = run_mce(model, source, settings, out_dir=shard_dir, quiet=True)
    if ctx.is_main:
        atomic_save_torch(result_path, {"predictions": result.predictions, "mce": result.mce,
                                        "errors": [s.error for s in result.scores], "clean": result.clean_error,
                                        "world_size": ctx.world_size})
    else:
        assert result is None
    cleanup()


if __name__ == "__main__":
    main()
