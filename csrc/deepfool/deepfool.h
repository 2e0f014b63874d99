#pragma once
// DeepFool step: shared argument checks and the kernel entry points (see rtool/ops/deepfool.py).
#include <ATen/ATen.h>

namespace rtool::deepfool {

// Everything a kernel needs, already checked: contiguous inputs of one floating dtype and the allocated
// outputs. Row b of grad_diff holds the K candidate gradient differences w_k (each of length D).
struct StepProblem {
  at::Tensor logit_diff;  // [B, K] f_k - f_label, float32 or float64, contiguous
  at::Tensor grad_diff;   // [B, K, D] grad f_k - grad f_label, same dtype, contiguous
  at::Tensor step;        // [B, D] output: (|f_l| / |w_l| + step_eps) * w_l / |w_l|, zeros when no candidate
  at::Tensor chosen;      // [B] int64 output: l, the first candidate with the smallest ratio; -1 when none
  at::Tensor distance;    // [B] output: |f_l| / |w_l| (the linearised distance), +inf when none
  double step_eps;
};

StepProblem prepare_step(const at::Tensor& logit_diff, const at::Tensor& grad_diff, double step_eps);

void deepfool_step_cpu_kernel(StepProblem& problem);

}  // namespace rtool::deepfool
