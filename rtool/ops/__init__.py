"""Python face of rtool's C++/CUDA operators (torch.ops.rtool.*) and their plain-PyTorch references."""
from rtool.ops._library import cuda_compiled, operators_loaded, require_operators
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
from rtool.ops.scorecam import MASK_MODES, scorecam_masks

__all__ = [
    "MASK_MODES", "NOISE_MODES", "RESAMPLE_MODES", "STAMP_KINDS", "corrupt_affine", "corrupt_box_blur", "corrupt_hue",
    "corrupt_noise", "corrupt_resample", "corrupt_stamp", "cuda_compiled", "operators_loaded", "require_operators",
    "scorecam_masks",
]
