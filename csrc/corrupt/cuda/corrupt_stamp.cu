// CUDA kernel of rtool.corrupt_stamp: one block per image walks its stamps in order; the threads of the
// block cover one stamp's pixels, and a barrier between stamps keeps the drawing order of the CPU kernel.
#include <cuda_runtime.h>

#include <cstdint>

#include "../corrupt_math.h"
#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

template <typename T>
__global__ void stamp_kernel(T* out, const int64_t* stamps, const T* fills, int64_t count, int64_t C, int64_t H,
                             int64_t W) {
  const int64_t b = blockIdx.x;
  T* image = out + b * C * H * W;
  for (int64_t s = 0; s < count; ++s) {
    const int64_t* st = stamps + (b * count + s) * kStampFields;
    const int64_t kind = st[0], r0 = st[1], c0 = st[2], sr = st[5], sc = st[6];
    const T fill = fills[b * count + s];
    int64_t rows = 0, cols = 0;
    if (kind == kStampRect) rows = st[3], cols = st[4];
    if (kind == kStampRhombus) rows = 2 * kShapeRadius + 1, cols = kRhombusWidth;
    if (kind == kStampDisc || kind == kStampDiscBlend) rows = cols = 2 * kShapeRadius + 1;
    for (int64_t t = threadIdx.x; t < rows * cols; t += blockDim.x) {
      const int64_t i = t / cols, j = t % cols;
      int64_t y, x;
      bool hit = true;
      if (kind == kStampRect) {
        y = r0 + i * sr, x = c0 + j * sc;
      } else if (kind == kStampRhombus) {
        const int di = static_cast<int>(i) - kShapeRadius, dk = static_cast<int>(j) - kShapeRadius - 1;
        hit = in_rhombus(di, dk), y = r0 + di, x = c0 + dk;
      } else {
        const int di = static_cast<int>(i) - kShapeRadius, dk = static_cast<int>(j) - kShapeRadius;
        hit = in_disc(di, dk), y = r0 + di, x = c0 + dk;
      }
      if (!hit || y < 0 || y >= H || x < 0 || x >= W) continue;
      T* p = image + y * W + x;
      for (int64_t c = 0; c < C; ++c, p += H * W) {
        *p = kind == kStampDiscBlend ? T(0.5) * *p + T(0.5) * fill : fill;
      }
    }
    __syncthreads();
  }
}

}  // namespace

cudaError_t launch_corrupt_stamp(const ImageArgs& img, const int64_t* stamps, const void* fills, int64_t count,
                                 cudaStream_t stream) {
  if (img.batch == 0 || count == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(img.batch)), block(256);
  if (img.is_double) {
    stamp_kernel<double><<<grid, block, 0, stream>>>(static_cast<double*>(img.out), stamps,
                                                     static_cast<const double*>(fills), count, img.channels,
                                                     img.height, img.width);
  } else {
    stamp_kernel<float><<<grid, block, 0, stream>>>(static_cast<float*>(img.out), stamps,
                                                    static_cast<const float*>(fills), count, img.channels,
                                                    img.height, img.width);
  }
  return cudaGetLastError();
}

}  // namespace rtool::corrupt
