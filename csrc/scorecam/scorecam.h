#pragma once
// Score-CAM mask builder: shared argument checks and the kernel entry points.
#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace rtool::scorecam {

enum class MaskMode : int { kParity = 0, kMinMax = 1 };

// Everything a kernel needs, already checked: contiguous inputs, one (image, channel) pair per output
// row, and the allocated outputs.
struct MaskProblem {
  at::Tensor images;         // [B, Cin, H, W], contiguous in `channels_last` or default layout
  at::Tensor activations;    // [B, C, h, w] float32, contiguous
  at::Tensor row_image;      // [N] int64
  at::Tensor row_channel;    // [N] int64
  at::Tensor masked;         // [N, Cin, H, W], images' dtype and layout
  at::Tensor ranges;         // [N] float32: max - min of each upsampled map
  MaskMode mode;
  double eps;
  bool channels_last;
};

MaskProblem prepare_masks(const at::Tensor& images, const at::Tensor& activations,
                          const std::string& mode, const std::optional<at::Tensor>& channels,
                          double eps);

void scorecam_masks_cpu_kernel(MaskProblem& problem);

}  // namespace rtool::scorecam
