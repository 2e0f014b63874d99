// CUDA kernel of rtool.corrupt_affine: one thread per output row, with PIL's three coordinate paths in the
// same arithmetic as the CPU kernel (see pil_affine_path), so both devices pick the same source pixels.
#include <cuda_runtime.h>

#include <cstdint>

#include "../corrupt_math.h"
#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

template <typename T>
__global__ void affine_kernel(const T* in, T* out, const double* matrices, bool quantize, int64_t B, int64_t C,
                              int64_t H, int64_t W) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= B * H) return;
  const int64_t b = r / H, y = r % H;
  const double* a = matrices + 6 * b;
  const T* src = in + b * C * H * W;
  T* dst = out + b * C * H * W;
  const int path = pil_affine_path(a, static_cast<int>(W), static_cast<int>(H));
  if (path == kAffineScale) {
    double yo = a[5] + a[4] * 0.5;
    for (int64_t k = 0; k < y; ++k) yo += a[4];
    const int yin = pil_coord(yo);
    double xo = a[2] + a[0] * 0.5;
    for (int64_t x = 0; x < W; ++x, xo += a[0]) put_pixel(src, dst, C, H, W, y, x, pil_coord(xo), yin, quantize);
  } else if (path == kAffineFixed) {
    const FixedAffine f = pil_fixed_affine(a);
    int xx = f.a2 + static_cast<int>(y) * f.a1, yy = f.a5 + static_cast<int>(y) * f.a4;
    for (int64_t x = 0; x < W; ++x, xx += f.a0, yy += f.a3)
      put_pixel(src, dst, C, H, W, y, x, xx >> 16, yy >> 16, quantize);
  } else {
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
    double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int64_t k = 0; k < y; ++k) {
      xo += a[1];
      yo += a[4];
    }
    double xx = xo, yy = yo;
    for (int64_t x = 0; x < W; ++x, xx += a[0], yy += a[3]) {
      put_pixel(src, dst, C, H, W, y, x, pil_coord(xx), pil_coord(yy), quantize);
    }
  }
}

}  // namespace

cudaError_t launch_corrupt_affine(const ImageArgs& img, const double* matrices, bool quantize, cudaStream_t stream) {
  const int64_t rows = img.batch * img.height;
  if (rows == 0 || img.width == 0) return cudaSuccess;
  const int threads = 128;
  const unsigned blocks = static_cast<unsigned>((rows + threads - 1) / threads);
  if (img.is_double) {
    affine_kernel<double><<<blocks, threads, 0, stream>>>(static_cast<const double*>(img.in),
                                                          static_cast<double*>(img.out), matrices, quantize, img.batch,
                                                          img.channels, img.height, img.width);
  } else {
    affine_kernel<float><<<blocks, threads, 0, stream>>>(static_cast<const float*>(img.in),
                                                         static_cast<float*>(img.out), matrices, quantize, img.batch,
                                                         img.channels, img.height, img.width);
  }
  return cudaGetLastError();
}

}  // namespace rtool::corrupt
