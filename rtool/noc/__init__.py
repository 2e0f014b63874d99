"""rtool noc: the 23 modelled corruptions of ImageNet-NOC (spec noc.md §1), batched and seeded.

    from rtool.noc import CORRUPTIONS, corrupt, draw_params, apply_params, Corrupt
    out = corrupt(images, "rain", seed=0, indices=dataset_indices)          # draw + apply
    params = draw_params("rain", (H, W), dataset_indices, seed=0)           # log them ...
    out = apply_params(images, params, mode="pil_exact")                    # ... and replay
    transform = Corrupt("hue", seed=0)                                      # in a v2 pipeline

Images are float [B, 3, H, W] in [0, 1] (H, W >= 16) on any device. None of this is differentiable.
"""
from rtool.noc.corruptions import (
    MODES,
    PIL_PATH,
    affine_matrices,
    affine_matrix,
    apply_params,
    corrupt,
    quantize8,
    stamp_arguments,
)
from rtool.noc.params import CORRUPTIONS, RANGES, CorruptionParams, draw_params, image_rng
from rtool.noc.preview import preview_grid
from rtool.noc.transform import Corrupt, CorruptedDataset

__all__ = [
    "CORRUPTIONS", "MODES", "PIL_PATH", "RANGES", "Corrupt", "CorruptedDataset", "CorruptionParams", "affine_matrices",
    "affine_matrix", "apply_params", "corrupt", "draw_params", "image_rng", "preview_grid", "quantize8",
    "stamp_arguments",
]
