// CUDA registration of the corruption ops: checked tensors -> raw launch arguments.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../corrupt.h"
#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

ImageArgs image_args(const at::Tensor& in, at::Tensor& out) {
  return {in.const_data_ptr(), out.mutable_data_ptr(), in.size(0), in.size(1), in.size(2), in.size(3),
          in.scalar_type() == at::kDouble};
}

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, "rtool.", op, ": CUDA launch failed: ", cudaGetErrorString(err));
}

at::Tensor stamp_cuda(const at::Tensor& images, const at::Tensor& stamps, const at::Tensor& fills) {
  const c10::cuda::CUDAGuard guard(images.device());
  StampProblem p = prepare_stamp(images, stamps, fills);
  ImageArgs args = image_args(p.out, p.out);
  check_launch(launch_corrupt_stamp(args, p.stamps.const_data_ptr<int64_t>(), p.fills.const_data_ptr(),
                                    p.stamps.size(1), at::cuda::getCurrentCUDAStream()),
               "corrupt_stamp");
  return p.out;
}

at::Tensor noise_cuda(const at::Tensor& images, const at::Tensor& keys, const at::Tensor& amounts,
                      c10::string_view mode) {
  const c10::cuda::CUDAGuard guard(images.device());
  NoiseProblem p = prepare_noise(images, keys, amounts, std::string(mode));
  check_launch(launch_corrupt_noise(image_args(p.images, p.out), p.keys.const_data_ptr<int64_t>(),
                                    p.amounts.const_data_ptr<double>(), static_cast<int>(p.mode),
                                    at::cuda::getCurrentCUDAStream()),
               "corrupt_noise");
  return p.out;
}

at::Tensor box_blur_cuda(const at::Tensor& images, const at::Tensor& weights, int64_t passes) {
  const c10::cuda::CUDAGuard guard(images.device());
  BlurProblem p = prepare_box_blur(images, weights, passes);
  at::Tensor scratch = at::empty({2 * p.images.numel()}, p.images.options());
  check_launch(launch_corrupt_box_blur(image_args(p.images, p.out), p.weights.const_data_ptr<double>(), p.passes,
                                       scratch.mutable_data_ptr(), at::cuda::getCurrentCUDAStream()),
               "corrupt_box_blur");
  return p.out;
}

at::Tensor hue_cuda(const at::Tensor& images, const at::Tensor& shifts, bool pil_exact) {
  const c10::cuda::CUDAGuard guard(images.device());
  HueProblem p = prepare_hue(images, shifts, pil_exact);
  check_launch(launch_corrupt_hue(image_args(p.images, p.out), p.shifts.const_data_ptr<double>(), p.pil_exact,
                                  at::cuda::getCurrentCUDAStream()),
               "corrupt_hue");
  return p.out;
}

at::Tensor affine_cuda(const at::Tensor& images, const at::Tensor& matrices, bool quantize) {
  const c10::cuda::CUDAGuard guard(images.device());
  AffineProblem p = prepare_affine(images, matrices, quantize);
  check_launch(launch_corrupt_affine(image_args(p.images, p.out), p.matrices.const_data_ptr<double>(), p.quantize,
                                     at::cuda::getCurrentCUDAStream()),
               "corrupt_affine");
  return p.out;
}

at::Tensor resample_cuda(const at::Tensor& images, const at::Tensor& params, c10::string_view mode, bool quantize) {
  const c10::cuda::CUDAGuard guard(images.device());
  ResampleProblem p = prepare_resample(images, params, std::string(mode), quantize);
  at::Tensor scratch = at::empty({2 * p.images.numel()}, p.images.options());
  check_launch(launch_corrupt_resample(image_args(p.images, p.out), p.params.const_data_ptr<int64_t>(),
                                       p.params.size(1), static_cast<int>(p.mode), p.quantize,
                                       scratch.mutable_data_ptr(), at::cuda::getCurrentCUDAStream()),
               "corrupt_resample");
  return p.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CUDA, m) {
  m.impl("corrupt_stamp", &stamp_cuda);
  m.impl("corrupt_noise", &noise_cuda);
  m.impl("corrupt_box_blur", &box_blur_cuda);
  m.impl("corrupt_hue", &hue_cuda);
  m.impl("corrupt_affine", &affine_cuda);
  m.impl("corrupt_resample", &resample_cuda);
}

}  // namespace rtool::corrupt
