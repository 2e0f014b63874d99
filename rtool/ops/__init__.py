"""Python face of rtool's C++/CUDA operators (torch.ops.rtool.*) and their plain-PyTorch references."""
from rtool.ops._library import OperatorsUnavailable, cuda_compiled, operators_loaded, require_operators, stale_reason
from rtool.ops.corrupt import (
    NOISE_MODES,
    RESAMPLE_MODES,
    STAMP_KINDS,
    corrupt_affine,
    corrupt_box_blur,
    corrupt_hue,
    corrupt_noise,
    corrupt_resample,
    corrupt_stamp,
)
from rtool.ops.deepfool import deepfool_step
from rtool.ops.dsa import dsa_knn, dsa_nearest
from rtool.ops.raster import rasterize, rasterize_backward, rasterize_image
from rtool.ops.scorecam import MASK_MODES, scorecam_masks

__all__ = [
    "OperatorsUnavailable", "cuda_compiled", "operators_loaded", "require_operators", "stale_reason",
    "MASK_MODES", "scorecam_masks",
    "dsa_knn", "dsa_nearest",
    "deepfool_step",
    "rasterize", "rasterize_backward", "rasterize_image",
    "NOISE_MODES", "RESAMPLE_MODES", "STAMP_KINDS", "corrupt_affine", "corrupt_box_blur", "corrupt_hue",
    "corrupt_noise", "corrupt_resample", "corrupt_stamp",
]
