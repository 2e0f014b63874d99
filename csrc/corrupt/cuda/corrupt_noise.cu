// CUDA kernel of rtool.corrupt_noise: one thread per element, the same counter-based hash as the CPU.
#include <cuda_runtime.h>

#include <cstdint>

#include "../corrupt_math.h"
#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

template <typename T>
__global__ void noise_kernel(const T* in, T* out, const int64_t* keys, const double* amounts, int mode,
                             int64_t total, int64_t per_image) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t b = i / per_image;
  const uint32_t e = static_cast<uint32_t>(i - b * per_image);
  const uint64_t key = static_cast<uint64_t>(keys[b]);
  const T v = in[i];
  if (mode == 0) {
    const T n = static_cast<T>(amounts[b] * half_normal(key, e));
    const T s = v + n;
    out[i] = s < T(0) ? T(0) : (s > T(1) ? T(1) : s);
  } else {
    const double u = noise_uniform(key, e);
    out[i] = u < amounts[b] ? T(0) : (u >= 1.0 - amounts[b] ? T(1) : v);
  }
}

}  // namespace

cudaError_t launch_corrupt_noise(const ImageArgs& img, const int64_t* keys, const double* amounts, int mode,
                                 cudaStream_t stream) {
  const int64_t per_image = img.channels * img.height * img.width;
  const int64_t total = img.batch * per_image;
  if (total == 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  if (img.is_double) {
    noise_kernel<double><<<blocks, threads, 0, stream>>>(static_cast<const double*>(img.in),
                                                         static_cast<double*>(img.out), keys, amounts, mode, total,
                                                         per_image);
  } else {
    noise_kernel<float><<<blocks, threads, 0, stream>>>(static_cast<const float*>(img.in),
                                                        static_cast<float*>(img.out), keys, amounts, mode, total,
                                                        per_image);
  }
  return cudaGetLastError();
}

}  // namespace rtool::corrupt
