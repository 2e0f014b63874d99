// DeepFool step: argument checks and the CPU registration.
#include "deepfool.h"

#include <torch/library.h>

#include <cmath>

namespace rtool::deepfool {

StepProblem prepare_step(const at::Tensor& logit_diff, const at::Tensor& grad_diff, double step_eps) {
  TORCH_CHECK(logit_diff.dim() == 2, "rtool.deepfool_step: logit_diff must be 2-D [B, K], got shape ",
              logit_diff.sizes());
  TORCH_CHECK(grad_diff.dim() == 3, "rtool.deepfool_step: grad_diff must be 3-D [B, K, D], got shape ",
              grad_diff.sizes());
  const auto dtype = logit_diff.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble,
              "rtool.deepfool_step: logit_diff must be float32 or float64, got ", dtype);
  TORCH_CHECK(grad_diff.scalar_type() == dtype, "rtool.deepfool_step: grad_diff must have logit_diff's dtype ",
              dtype, ", got ", grad_diff.scalar_type());
  TORCH_CHECK(grad_diff.device() == logit_diff.device(), "rtool.deepfool_step: grad_diff is on ",
              grad_diff.device(), " but logit_diff is on ", logit_diff.device());
  TORCH_CHECK(grad_diff.size(0) == logit_diff.size(0) && grad_diff.size(1) == logit_diff.size(1),
              "rtool.deepfool_step: grad_diff has shape ", grad_diff.sizes(),
              " but logit_diff has shape ", logit_diff.sizes(), "; expected grad_diff [B, K, D] with logit_diff [B, K]");
  TORCH_CHECK(std::isfinite(step_eps) && step_eps >= 0, "rtool.deepfool_step: step_eps must be finite and >= 0, got ",
              step_eps);

  const int64_t batch = grad_diff.size(0), dims = grad_diff.size(2);
  StepProblem problem{
      logit_diff.contiguous(),
      grad_diff.contiguous(),
      at::empty({batch, dims}, grad_diff.options()),
      at::empty({batch}, grad_diff.options().dtype(at::kLong)),
      at::empty({batch}, grad_diff.options()),
      step_eps,
  };
  return problem;
}

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> deepfool_step_cpu(const at::Tensor& logit_diff,
                                                                 const at::Tensor& grad_diff, double step_eps) {
  StepProblem problem = prepare_step(logit_diff, grad_diff, step_eps);
  deepfool_step_cpu_kernel(problem);
  return {problem.step, problem.chosen, problem.distance};
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CPU, m) { m.impl("deepfool_step", &deepfool_step_cpu); }

}  // namespace rtool::deepfool
