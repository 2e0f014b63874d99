"""Python face of rtool's C++/CUDA operators (torch.ops.rtool.*) and their plain-PyTorch references."""
from rtool.ops._library import cuda_compiled, operators_loaded, require_operators
from rtool.ops.deepfool import deepfool_step
from rtool.ops.scorecam import MASK_MODES, scorecam_masks

__all__ = ["MASK_MODES", "cuda_compiled", "deepfool_step", "operators_loaded", "require_operators", "scorecam_masks"]
