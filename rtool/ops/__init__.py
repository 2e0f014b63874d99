"""Python face of rtool's C++/CUDA operators (torch.ops.rtool.*) and their plain-PyTorch references."""
from rtool.ops._library import cuda_compiled, operators_loaded, require_operators
from rtool.ops.dsa import dsa_knn, dsa_nearest
from rtool.ops.scorecam import MASK_MODES, scorecam_masks

__all__ = [
    "MASK_MODES", "cuda_compiled", "dsa_knn", "dsa_nearest", "operators_loaded", "require_operators", "scorecam_masks",
]
