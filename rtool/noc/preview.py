"""The preview grid: one image under every corruption at a few fixed severities (no file I/O here)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from rtool.noc.corruptions import corrupt
from rtool.noc.params import CORRUPTIONS

PREVIEW_SEVERITIES = (0.0, 0.5, 1.0)


def preview_grid(image: torch.Tensor, seed: int = 0, mode: str = "pil_exact",
                 severities: Sequence[float] = PREVIEW_SEVERITIES, names: Sequence[str] = CORRUPTIONS,
                 pad: int = 2) -> torch.Tensor:
    """A [3, rows*(H+pad)+pad, cols*(W+pad)+pad] float grid: one row per severity (plus the clean image in
    the first column), one column per corruption, in the order of `names`."""
    if image.dim() != 3:
        raise ValueError(f"image must be [3, H, W], got shape {tuple(image.shape)}")
    _, H, W = image.shape
    rows, cols = len(severities), len(names) + 1
    grid = torch.ones((3, rows * (H + pad) + pad, cols * (W + pad) + pad), dtype=image.dtype)
    for r, severity in enumerate(severities):
        tiles = [image] + [corrupt(image[None], name, seed=seed, mode=mode, severity=severity)[0] for name in names]
        for c, tile in enumerate(tiles):
            y, x = pad + r * (H + pad), pad + c * (W + pad)
            grid[:, y : y + H, x : x + W] = tile.cpu()
    return grid
