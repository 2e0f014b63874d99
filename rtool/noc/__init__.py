"""rtool noc: the 23 modelled corruptions of ImageNet-NOC (spec noc.md §1), batched and seeded.

    from rtool.noc import CORRUPTIONS, corrupt, draw_params, apply_params, Corrupt
    out = corrupt(images, "rain", seed=0, indices=dataset_indices)          # draw + apply
    params = draw_params("rain", (H, W), dataset_indices, seed=0)           # log them ...
    out = apply_params(images, params, mode="pil_exact")                    # ... and replay
    transform = Corrupt("hue", seed=0)                                      # in a v2 pipeline
    result = run_mce(model, TensorImages(...), MceSettings(preset="noc8"))  # ImageNet-NOC mCE
    result = run_imagenet_c(model, {(name, severity): FileImages(...)})      # ImageNet-C mCE

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
from rtool.noc.benchmark import run_mce
from rtool.noc.imagenet_c import run_imagenet_c
from rtool.noc.images import Crop, FileImages, ImageSource, TensorImages
from rtool.noc.params import CORRUPTIONS, RANGES, CorruptionParams, draw_params, image_rng
from rtool.noc.preview import preview_grid
from rtool.noc.references import (IMAGENET_C_ALEXNET, IMAGENET_C_CORRUPTIONS, PRESETS, REFERENCE_TABLES,
                                  resolve_corruptions)
from rtool.noc.results import CorruptionScore, MceResult
from rtool.noc.scores import CE_FORMS, corruption_error, mean_ce, summed_corruption_error
from rtool.noc.settings import ImageNetCSettings, MceSettings
from rtool.noc.transform import Corrupt, CorruptedDataset

__all__ = [
    "CORRUPTIONS", "MODES", "PIL_PATH", "RANGES", "Corrupt", "CorruptedDataset", "CorruptionParams", "affine_matrices",
    "affine_matrix", "apply_params", "corrupt", "draw_params", "image_rng", "preview_grid", "quantize8",
    "stamp_arguments",
    "CE_FORMS", "IMAGENET_C_ALEXNET", "IMAGENET_C_CORRUPTIONS", "PRESETS", "REFERENCE_TABLES", "CorruptionScore",
    "Crop", "FileImages", "ImageNetCSettings", "ImageSource", "MceResult", "MceSettings", "TensorImages",
    "corruption_error", "mean_ce", "resolve_corruptions", "run_imagenet_c", "run_mce", "summed_corruption_error",
]
