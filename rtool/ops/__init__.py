"""Python face of rtool's C++/CUDA operators (torch.ops.rtool.*) and their plain-PyTorch references."""
from rtool.ops._library import OperatorsUnavailable, cuda_compiled, operators_loaded, require_operators, stale_reason
from rtool.ops.scorecam import MASK_MODES, scorecam_masks

__all__ = [
    "MASK_MODES", "OperatorsUnavailable", "cuda_compiled", "operators_loaded", "require_operators", "scorecam_masks",
    "stale_reason",
]
