// Corruption ops: argument checks and the CPU registration.
#include "corrupt.h"

#include <torch/library.h>

#include "corrupt_math.h"

namespace rtool::corrupt {
namespace {

at::Tensor checked_images(const at::Tensor& images, const char* op, int64_t channels = -1) {
  TORCH_CHECK(images.dim() == 4, "rtool.", op, ": images must be 4-D [B, C, H, W], got shape ", images.sizes());
  TORCH_CHECK(images.scalar_type() == at::kFloat || images.scalar_type() == at::kDouble, "rtool.", op,
              ": images must be float32 or float64, got ", images.scalar_type());
  if (channels > 0) {
    TORCH_CHECK(images.size(1) == channels, "rtool.", op, ": images must have ", channels,
                " channels (RGB), got shape ", images.sizes());
  }
  return images.contiguous();
}

at::Tensor per_image(const at::Tensor& t, const at::Tensor& images, const char* op, const char* name,
                     at::ScalarType dtype) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == images.size(0), "rtool.", op, ": ", name, " must be 1-D [B] with B=",
              images.size(0), ", got shape ", t.sizes());
  TORCH_CHECK(t.device() == images.device(), "rtool.", op, ": ", name, " is on ", t.device(),
              " but images are on ", images.device());
  return t.to(dtype).contiguous();
}

}  // namespace

StampProblem prepare_stamp(const at::Tensor& images, const at::Tensor& stamps, const at::Tensor& fills) {
  at::Tensor x = checked_images(images, "corrupt_stamp");
  TORCH_CHECK(stamps.dim() == 3 && stamps.size(0) == x.size(0) && stamps.size(2) == kStampFields,
              "rtool.corrupt_stamp: stamps must be [B, S, 7] with B=", x.size(0), ", got shape ", stamps.sizes());
  TORCH_CHECK(stamps.scalar_type() == at::kLong, "rtool.corrupt_stamp: stamps must be int64, got ",
              stamps.scalar_type());
  TORCH_CHECK(fills.dim() == 2 && fills.size(0) == stamps.size(0) && fills.size(1) == stamps.size(1),
              "rtool.corrupt_stamp: fills must be [B, S] = ", stamps.sizes().slice(0, 2), ", got shape ",
              fills.sizes());
  TORCH_CHECK(stamps.device() == x.device() && fills.device() == x.device(),
              "rtool.corrupt_stamp: stamps and fills must be on the images' device ", x.device());
  return {x.clone(), stamps.contiguous(), fills.to(x.scalar_type()).contiguous()};
}

NoiseProblem prepare_noise(const at::Tensor& images, const at::Tensor& keys, const at::Tensor& amounts,
                           const std::string& mode) {
  at::Tensor x = checked_images(images, "corrupt_noise");
  NoiseMode m;
  if (mode == "gaussian") {
    m = NoiseMode::kGaussian;
  } else if (mode == "salt_pepper") {
    m = NoiseMode::kSaltPepper;
  } else {
    TORCH_CHECK(false, "rtool.corrupt_noise: mode must be 'gaussian' or 'salt_pepper', got '", mode, "'");
  }
  TORCH_CHECK(keys.scalar_type() == at::kLong, "rtool.corrupt_noise: keys must be int64, got ", keys.scalar_type());
  TORCH_CHECK(2 * x.numel() / std::max<int64_t>(x.size(0), 1) < (int64_t{1} << 32),
              "rtool.corrupt_noise: images of shape ", x.sizes(), " have too many elements per image (max 2^31)");
  return {x, at::empty_like(x), per_image(keys, x, "corrupt_noise", "keys", at::kLong),
          per_image(amounts, x, "corrupt_noise", "amounts", at::kDouble), m};
}

BlurProblem prepare_box_blur(const at::Tensor& images, const at::Tensor& weights, int64_t passes) {
  at::Tensor x = checked_images(images, "corrupt_box_blur");
  TORCH_CHECK(passes >= 0, "rtool.corrupt_box_blur: passes must be >= 0, got ", passes);
  return {x, at::empty_like(x), per_image(weights, x, "corrupt_box_blur", "weights", at::kDouble), passes};
}

HueProblem prepare_hue(const at::Tensor& images, const at::Tensor& shifts, bool pil_exact) {
  at::Tensor x = checked_images(images, "corrupt_hue", 3);
  return {x, at::empty_like(x), per_image(shifts, x, "corrupt_hue", "shifts", at::kDouble), pil_exact};
}

AffineProblem prepare_affine(const at::Tensor& images, const at::Tensor& matrices, bool quantize) {
  at::Tensor x = checked_images(images, "corrupt_affine");
  TORCH_CHECK(matrices.dim() == 2 && matrices.size(0) == x.size(0) && matrices.size(1) == 6,
              "rtool.corrupt_affine: matrices must be [B, 6] with B=", x.size(0), ", got shape ", matrices.sizes());
  TORCH_CHECK(matrices.device() == x.device(), "rtool.corrupt_affine: matrices are on ", matrices.device(),
              " but images are on ", x.device());
  return {x, at::empty_like(x), matrices.to(at::kDouble).contiguous(), quantize};
}

ResampleProblem prepare_resample(const at::Tensor& images, const at::Tensor& params, const std::string& mode,
                                 bool quantize) {
  at::Tensor x = checked_images(images, "corrupt_resample");
  ResampleMode m;
  int64_t width;
  if (mode == "pixelate") {
    m = ResampleMode::kPixelate, width = 1;
  } else if (mode == "thumbnail") {
    m = ResampleMode::kThumbnail, width = 2;
  } else if (mode == "crop_stretch") {
    m = ResampleMode::kCropStretch, width = 2;
  } else {
    TORCH_CHECK(false, "rtool.corrupt_resample: mode must be 'pixelate', 'thumbnail' or 'crop_stretch', got '",
                mode, "'");
  }
  TORCH_CHECK(params.dim() == 2 && params.size(0) == x.size(0) && params.size(1) == width,
              "rtool.corrupt_resample: params for mode '", mode, "' must be [B, ", width, "] with B=", x.size(0),
              ", got shape ", params.sizes());
  TORCH_CHECK(params.scalar_type() == at::kLong, "rtool.corrupt_resample: params must be int64, got ",
              params.scalar_type());
  TORCH_CHECK(params.device() == x.device(), "rtool.corrupt_resample: params are on ", params.device(),
              " but images are on ", x.device());
  const int64_t H = x.size(2), W = x.size(3);
  if (params.numel() > 0) {
    const at::Tensor cpu = params.cpu();
    if (m == ResampleMode::kPixelate) {
      const int64_t lo = cpu.min().item<int64_t>(), hi = cpu.max().item<int64_t>();
      TORCH_CHECK(lo >= 1 && hi <= std::min(H, W), "rtool.corrupt_resample: pixelate blocks must be in [1, ",
                  std::min(H, W), "], got ", (lo < 1 ? lo : hi));
    } else if (m == ResampleMode::kThumbnail) {
      const at::Tensor h = cpu.select(1, 0), w = cpu.select(1, 1);
      TORCH_CHECK(h.min().item<int64_t>() >= 1 && h.max().item<int64_t>() <= H && w.min().item<int64_t>() >= 1 &&
                      w.max().item<int64_t>() <= W,
                  "rtool.corrupt_resample: thumbnail sizes must be within [1, H] x [1, W] = [1, ", H, "] x [1, ", W,
                  "]");
      TORCH_CHECK((h * (kMaxTaps / 2 - 1)).min().item<int64_t>() >= H &&
                      (w * (kMaxTaps / 2 - 1)).min().item<int64_t>() >= W,
                  "rtool.corrupt_resample: thumbnail shrinks by more than ", kMaxTaps / 2 - 1, "x");
    } else {
      const at::Tensor axis = cpu.select(1, 0), cut = cpu.select(1, 1);
      TORCH_CHECK(((axis == 0) | (axis == 1)).all().item<bool>(),
                  "rtool.corrupt_resample: crop_stretch axis must be 0 (rows) or 1 (columns)");
      const at::Tensor length = at::where(axis == 0, at::full_like(cut, H), at::full_like(cut, W));
      TORCH_CHECK((cut >= 0).all().item<bool>() && (cut < length).all().item<bool>(),
                  "rtool.corrupt_resample: crop_stretch cut must be in [0, H or W), got shape ", x.sizes());
    }
  }
  return {x, at::empty_like(x), params.contiguous(), m, quantize};
}

namespace {

at::Tensor stamp_cpu(const at::Tensor& images, const at::Tensor& stamps, const at::Tensor& fills) {
  StampProblem p = prepare_stamp(images, stamps, fills);
  corrupt_stamp_cpu_kernel(p);
  return p.out;
}

at::Tensor noise_cpu(const at::Tensor& images, const at::Tensor& keys, const at::Tensor& amounts,
                     c10::string_view mode) {
  NoiseProblem p = prepare_noise(images, keys, amounts, std::string(mode));
  corrupt_noise_cpu_kernel(p);
  return p.out;
}

at::Tensor box_blur_cpu(const at::Tensor& images, const at::Tensor& weights, int64_t passes) {
  BlurProblem p = prepare_box_blur(images, weights, passes);
  corrupt_box_blur_cpu_kernel(p);
  return p.out;
}

at::Tensor hue_cpu(const at::Tensor& images, const at::Tensor& shifts, bool pil_exact) {
  HueProblem p = prepare_hue(images, shifts, pil_exact);
  corrupt_hue_cpu_kernel(p);
  return p.out;
}

at::Tensor affine_cpu(const at::Tensor& images, const at::Tensor& matrices, bool quantize) {
  AffineProblem p = prepare_affine(images, matrices, quantize);
  corrupt_affine_cpu_kernel(p);
  return p.out;
}

at::Tensor resample_cpu(const at::Tensor& images, const at::Tensor& params, c10::string_view mode, bool quantize) {
  ResampleProblem p = prepare_resample(images, params, std::string(mode), quantize);
  corrupt_resample_cpu_kernel(p);
  return p.out;
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CPU, m) {
  m.impl("corrupt_stamp", &stamp_cpu);
  m.impl("corrupt_noise", &noise_cpu);
  m.impl("corrupt_box_blur", &box_blur_cpu);
  m.impl("corrupt_hue", &hue_cpu);
  m.impl("corrupt_affine", &affine_cpu);
  m.impl("corrupt_resample", &resample_cpu);
}

}  // namespace rtool::corrupt
