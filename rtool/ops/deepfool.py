"""DeepFool step: the Python face of torch.ops.rtool.deepfool_step.

Not differentiable: the step is a piecewise choice (an argmin over candidates) used inside an attack loop
whose gradients come from the model, never through this operator. Backpropagating through it raises a
RuntimeError that says so (the registered backward refuses) instead of silently returning zeros.
"""
from __future__ import annotations

import torch

from rtool.ops._library import operators_loaded, require_operators

DEFAULT_STEP_EPS = 1e-4


def deepfool_step(
    logit_diff: torch.Tensor, grad_diff: torch.Tensor, step_eps: float = DEFAULT_STEP_EPS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One multi-class L2 DeepFool step per sample, from the linearisation at the current point.

    logit_diff [B, K]: f'_k = f_k(x) - f_label(x) for the K candidate classes other than the label;
    grad_diff [B, K, D]: w'_k = grad f_k(x) - grad f_label(x), flattened input (same dtype, float32 or
    float64, same device). Per sample, with ratio_k = |f'_k| / ||w'_k||_2:
      - l = the first k (in candidate order) with the smallest ratio (strict <, as the LTS4 code);
      - a candidate whose ||w'_k|| is 0 has no linearised boundary: ratio +inf, never chosen; a NaN ratio is
        never chosen either;
      - step r = (ratio_l + step_eps) * w'_l / ||w'_l|| (step_eps = the authors' fixed extra step length of
        1e-4, in input units; pass 0 for the paper's step).
    Returns (step [B, D] in the input dtype, chosen [B] int64 = l or -1 when no candidate has a non-zero
    gradient difference, distance [B] = ratio_l, +inf when chosen is -1; the step is then all zeros).
    The squared norms are accumulated in float64 on CPU and CUDA.
    """
    require_operators("deepfool_step")
    return torch.ops.rtool.deepfool_step(logit_diff, grad_diff, float(step_eps))


if operators_loaded():

    @torch.library.register_fake("rtool::deepfool_step")
    def _deepfool_step_fake(logit_diff, grad_diff, step_eps=DEFAULT_STEP_EPS):
        torch._check(logit_diff.dim() == 2, lambda: f"logit_diff must be 2-D [B, K], got {logit_diff.dim()}-D")
        torch._check(grad_diff.dim() == 3, lambda: f"grad_diff must be 3-D [B, K, D], got {grad_diff.dim()}-D")
        torch._check(logit_diff.dtype in (torch.float32, torch.float64),
                     lambda: f"logit_diff must be float32 or float64, got {logit_diff.dtype}")
        torch._check(grad_diff.dtype == logit_diff.dtype, lambda: "grad_diff must have logit_diff's dtype")
        torch._check(grad_diff.shape[0] == logit_diff.shape[0] and grad_diff.shape[1] == logit_diff.shape[1],
                     lambda: "grad_diff [B, K, D] must match logit_diff [B, K]")
        batch, dims = grad_diff.shape[0], grad_diff.shape[2]
        step = grad_diff.new_empty((batch, dims))
        chosen = grad_diff.new_empty((batch,), dtype=torch.int64)
        distance = grad_diff.new_empty((batch,))
        return step, chosen, distance

    def _deepfool_step_setup(ctx, inputs, output):
        pass

    def _deepfool_step_backward(ctx, *grads):
        raise RuntimeError("rtool.deepfool_step is not differentiable: it chooses a candidate (an argmin); "
                           "differentiate the model's logits instead")

    torch.library.register_autograd("rtool::deepfool_step", _deepfool_step_backward,
                                    setup_context=_deepfool_step_setup)
