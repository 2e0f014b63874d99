"""Prints the pil_exact vs fast difference of every corruption (mean and max |pil_exact - fast|) as a
markdown table: `python bench/noc_mode_difference.py [--batch 64 --size 224]`.

Inputs: smooth random images (uniform noise blurred by a 9x9 box and stretched to [0, 1]), closer to
photographs than raw noise, whose resampling differences would be larger.
"""
import argparse

import torch
import torch.nn.functional as F

from rtool.noc import CORRUPTIONS, PIL_PATH, corrupt


def smooth_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((batch, 3, size + 8, size + 8), generator=g)
    x = F.avg_pool2d(x, 9, stride=1)
    lo = x.amin(dim=(1, 2, 3), keepdim=True)
    hi = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x - lo) / (hi - lo)).contiguous()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    x = smooth_images(args.batch, args.size)
    print(f"| corruption | PIL path | mean abs diff | max abs diff |  ({args.batch} images, {args.size}x{args.size})")
    print("|---|---|---|---|")
    for name in CORRUPTIONS:
        d = (corrupt(x, name, seed=0, mode="pil_exact") - corrupt(x, name, seed=0, mode="fast")).abs()
        print(f"| {name} | {'yes' if name in PIL_PATH else 'no'} | {d.mean():.2e} | {d.max():.4f} |")


if __name__ == "__main__":
    main()
