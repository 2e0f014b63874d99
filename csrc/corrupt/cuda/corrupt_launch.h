#pragma once
// Plain-C++ interface between the tensor-facing CUDA dispatch (corrupt_cuda.cpp) and the .cu kernels.
#include <cuda_runtime.h>

#include <cstdint>

namespace rtool::corrupt {

// Images are contiguous [B, C, H, W]; `is_double` picks float64 over float32.
struct ImageArgs {
  const void* in;
  void* out;
  int64_t batch, channels, height, width;
  bool is_double;
};

// `out` already holds a copy of the images.
cudaError_t launch_corrupt_stamp(const ImageArgs& img, const int64_t* stamps, const void* fills, int64_t count,
                                 cudaStream_t stream);
cudaError_t launch_corrupt_noise(const ImageArgs& img, const int64_t* keys, const double* amounts, int mode,
                                 cudaStream_t stream);
// `scratch` holds 2 * B * C * H * W elements of the images' dtype.
cudaError_t launch_corrupt_box_blur(const ImageArgs& img, const double* weights, int64_t passes, void* scratch,
                                    cudaStream_t stream);
cudaError_t launch_corrupt_hue(const ImageArgs& img, const double* shifts, bool pil_exact, cudaStream_t stream);
cudaError_t launch_corrupt_affine(const ImageArgs& img, const double* matrices, bool quantize, cudaStream_t stream);
// mode 0 pixelate, 1 thumbnail, 2 crop_stretch; `scratch` holds 2 * B * C * H * W elements.
cudaError_t launch_corrupt_resample(const ImageArgs& img, const int64_t* params, int64_t param_width, int mode,
                                    bool quantize, void* scratch, cudaStream_t stream);

}  // namespace rtool::corrupt
