// CUDA registration: turns the checked tensors into raw launch arguments.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../scorecam.h"
#include "scorecam_launch.h"

namespace rtool::scorecam {
namespace {

MaskDtype mask_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return MaskDtype::kFloat32;
    case at::kDouble: return MaskDtype::kFloat64;
    case at::kHalf: return MaskDtype::kFloat16;
    case at::kBFloat16: return MaskDtype::kBFloat16;
    default: TORCH_CHECK(false, "rtool.scorecam_masks: unsupported image dtype ", type);
  }
}

std::tuple<at::Tensor, at::Tensor> scorecam_masks_cuda(const at::Tensor& images, const at::Tensor& activations,
                                                       c10::string_view mode,
                                                       const std::optional<at::Tensor>& channels, double eps) {
  const c10::cuda::CUDAGuard guard(images.device());
  MaskProblem problem = prepare_masks(images, activations, std::string(mode), channels, eps);
  const int64_t rows = problem.row_image.numel();
  at::Tensor scratch = at::empty({2 * rows}, problem.ranges.options());
  MaskLaunch launch{problem.images.const_data_ptr(),
                    problem.activations.const_data_ptr<float>(),
                    problem.row_image.const_data_ptr<int64_t>(),
                    problem.row_channel.const_data_ptr<int64_t>(),
                    problem.masked.mutable_data_ptr(),
                    rows,
                    problem.images.size(1),
                    problem.images.size(2),
                    problem.images.size(3),
                    problem.activations.size(1),
                    problem.activations.size(2),
                    problem.activations.size(3),
                    static_cast<int>(problem.mode),
                    static_cast<float>(problem.eps),
                    problem.channels_last,
                    mask_dtype(problem.images.scalar_type())};
  const cudaError_t err = launch_scorecam_masks(launch, problem.ranges.mutable_data_ptr<float>(),
                                                scratch.mutable_data_ptr<float>(),
                                                at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "rtool.scorecam_masks: CUDA launch failed: ", cudaGetErrorString(err));
  return {problem.masked, problem.ranges};
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CUDA, m) { m.impl("scorecam_masks", &scorecam_masks_cuda); }

}  // namespace rtool::scorecam
