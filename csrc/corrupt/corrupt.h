#pragma once
// Corruption kernels (rtool noc): shared argument checks and the kernel entry points.
#include <ATen/ATen.h>

#include <string>

namespace rtool::corrupt {

enum class NoiseMode : int { kGaussian = 0, kSaltPepper = 1 };
enum class ResampleMode : int { kPixelate = 0, kThumbnail = 1, kCropStretch = 2 };

// Every op reads images [B, C, H, W] (float32 or float64, made contiguous) and writes a new tensor `out`
// of the same shape: the input is never modified.
struct StampProblem {
  at::Tensor out;     // starts as a copy of the images; stamps are drawn into it in order
  at::Tensor stamps;  // [B, S, 7] int64: kind, r0, c0, h, w, stride_r, stride_c
  at::Tensor fills;   // [B, S] in the images' dtype
};

struct NoiseProblem {
  at::Tensor images, out;
  at::Tensor keys;     // [B] int64
  at::Tensor amounts;  // [B] float64: sigma (gaussian) or the probability of each of 0 and 1 (salt_pepper)
  NoiseMode mode;
};

struct BlurProblem {
  at::Tensor images, out;
  at::Tensor weights;  // [B] float64
  int64_t passes;
};

struct HueProblem {
  at::Tensor images, out;
  at::Tensor shifts;  // [B] float64, in turns
  bool pil_exact;
};

struct AffineProblem {
  at::Tensor images, out;
  at::Tensor matrices;  // [B, 6] float64: PIL's inverse affine coefficients
  bool quantize;
};

struct ResampleProblem {
  at::Tensor images, out;
  at::Tensor params;  // [B, 1] (pixelate: block) or [B, 2] (thumbnail: height, width; crop_stretch: axis, cut)
  ResampleMode mode;
  bool quantize;
};

StampProblem prepare_stamp(const at::Tensor& images, const at::Tensor& stamps, const at::Tensor& fills);
NoiseProblem prepare_noise(const at::Tensor& images, const at::Tensor& keys, const at::Tensor& amounts,
                           const std::string& mode);
BlurProblem prepare_box_blur(const at::Tensor& images, const at::Tensor& weights, int64_t passes);
HueProblem prepare_hue(const at::Tensor& images, const at::Tensor& shifts, bool pil_exact);
AffineProblem prepare_affine(const at::Tensor& images, const at::Tensor& matrices, bool quantize);
ResampleProblem prepare_resample(const at::Tensor& images, const at::Tensor& params, const std::string& mode,
                                 bool quantize);

void corrupt_stamp_cpu_kernel(StampProblem& p);
void corrupt_noise_cpu_kernel(NoiseProblem& p);
void corrupt_box_blur_cpu_kernel(BlurProblem& p);
void corrupt_hue_cpu_kernel(HueProblem& p);
void corrupt_affine_cpu_kernel(AffineProblem& p);
void corrupt_resample_cpu_kernel(ResampleProblem& p);

}  // namespace rtool::corrupt
