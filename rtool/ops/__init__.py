"""Python face of rtool's C++/CUDA operators (torch.ops.rtool.*) and their plain-PyTorch references."""
from rtool.ops._library import OperatorsUnavailable, cuda_compiled, operators_loaded, require_operators, stale_reason
from rtool.ops.deepfool import deepfool_step
from rtool.ops.dsa import dsa_knn, dsa_nearest
from rtool.ops.scorecam import MASK_MODES, scorecam_masks

__all__ = [
    "OperatorsUnavailable", "cuda_compiled", "operators_loaded", "require_operators", "stale_reason",
    "MASK_MODES", "scorecam_masks",
    "dsa_knn", "dsa_nearest",
    "deepfool_step",
]
