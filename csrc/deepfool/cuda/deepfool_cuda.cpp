// CUDA registration: turns the checked tensors into raw launch arguments.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../deepfool.h"
#include "deepfool_launch.h"

namespace rtool::deepfool {
namespace {

template <typename T>
cudaError_t launch_typed(StepProblem& p) {
  StepLaunch<T> args{p.logit_diff.const_data_ptr<T>(),
                     p.grad_diff.const_data_ptr<T>(),
                     p.step.mutable_data_ptr<T>(),
                     p.chosen.mutable_data_ptr<int64_t>(),
                     p.distance.mutable_data_ptr<T>(),
                     p.grad_diff.size(0),
                     p.grad_diff.size(1),
                     p.grad_diff.size(2),
                     static_cast<T>(p.step_eps)};
  return launch_deepfool_step(args, at::cuda::getCurrentCUDAStream());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> deepfool_step_cuda(const at::Tensor& logit_diff,
                                                                  const at::Tensor& grad_diff, double step_eps) {
  const c10::cuda::CUDAGuard guard(logit_diff.device());
  StepProblem problem = prepare_step(logit_diff, grad_diff, step_eps);
  TORCH_CHECK(problem.grad_diff.size(0) <= static_cast<int64_t>(INT32_MAX),
              "rtool.deepfool_step: batch ", problem.grad_diff.size(0), " exceeds the CUDA grid limit of ", INT32_MAX);
  const cudaError_t err = problem.grad_diff.scalar_type() == at::kDouble ? launch_typed<double>(problem)
                                                                         : launch_typed<float>(problem);
  TORCH_CHECK(err == cudaSuccess, "rtool.deepfool_step: CUDA launch failed: ", cudaGetErrorString(err));
  return {problem.step, problem.chosen, problem.distance};
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CUDA, m) { m.impl("deepfool_step", &deepfool_step_cuda); }

}  // namespace rtool::deepfool
