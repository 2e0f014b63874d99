// CUDA kernel of rtool.corrupt_hue: one thread per pixel, the same HSV arithmetic as the CPU kernel.
#include <cuda_runtime.h>

#include <cstdint>

#include "../corrupt_math.h"
#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

template <typename T>
__global__ void hue_kernel(const T* in, T* out, const double* shifts, bool pil_exact, int64_t total, int64_t plane) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t b = i / plane, q = i - b * plane;
  const T* x = in + b * 3 * plane + q;
  T* o = out + b * 3 * plane + q;
  if (pil_exact) {
    int h, s, v, r, g, bl;
    pil_rgb_to_hsv(clip8(static_cast<int>(x[0] * T(255))), clip8(static_cast<int>(x[plane] * T(255))),
                   clip8(static_cast<int>(x[2 * plane] * T(255))), &h, &s, &v);
    h = (h + pil_hue_offset(shifts[b])) & 255;
    pil_hsv_to_rgb(h, s, v, &r, &g, &bl);
    o[0] = static_cast<T>(r) / T(255);
    o[plane] = static_cast<T>(g) / T(255);
    o[2 * plane] = static_cast<T>(bl) / T(255);
  } else {
    float_hue<T>(x[0], x[plane], x[2 * plane], static_cast<T>(shifts[b]), o, o + plane, o + 2 * plane);
  }
}

}  // namespace

cudaError_t launch_corrupt_hue(const ImageArgs& img, const double* shifts, bool pil_exact, cudaStream_t stream) {
  const int64_t plane = img.height * img.width;
  const int64_t total = img.batch * plane;
  if (total == 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  if (img.is_double) {
    hue_kernel<double><<<blocks, threads, 0, stream>>>(static_cast<const double*>(img.in),
                                                       static_cast<double*>(img.out), shifts, pil_exact, total, plane);
  } else {
    hue_kernel<float><<<blocks, threads, 0, stream>>>(static_cast<const float*>(img.in), static_cast<float*>(img.out),
                                                      shifts, pil_exact, total, plane);
  }
  return cudaGetLastError();
}

}  // namespace rtool::corrupt
