#pragma once
// Plain-C++ interface between the tensor-facing CUDA dispatch and the .cu kernels (no torch headers).
#include <cuda_runtime.h>

#include <cstdint>

namespace rtool::scorecam {

enum class MaskDtype : int { kFloat32, kFloat64, kFloat16, kBFloat16 };

struct MaskLaunch {
  const void* images;          // [B, Cin, H, W] in `dtype`, contiguous or channels_last
  const float* activations;    // [B, C, h, w]
  const int64_t* row_image;    // [rows]
  const int64_t* row_channel;  // [rows]
  void* masked;                // [rows, Cin, H, W] in `dtype`, same layout as images
  int64_t rows, in_channels, height, width, map_channels, map_h, map_w;
  int mode;                    // 0 parity, 1 minmax
  float eps;
  bool channels_last;
  MaskDtype dtype;
};

// `scratch` holds 2 * rows floats. Returns the launch error, if any.
cudaError_t launch_scorecam_masks(const MaskLaunch& args, float* ranges, float* scratch, cudaStream_t stream);

}  // namespace rtool::scorecam
