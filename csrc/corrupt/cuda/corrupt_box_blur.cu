// CUDA kernels of rtool.corrupt_box_blur: each pass is a horizontal then a vertical 3-tap zero-padded sum
// over every element (ping-pong between two scratch buffers), then a blend kernel.
#include <cuda_runtime.h>

#include <cstdint>

#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

template <typename T>
__global__ void horizontal_kernel(const T* in, T* out, int64_t total, int64_t W) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t x = i % W;
  T s = in[i];
  if (x > 0) s += in[i - 1];
  if (x + 1 < W) s += in[i + 1];
  out[i] = s;
}

template <typename T>
__global__ void vertical_kernel(const T* in, T* out, int64_t total, int64_t H, int64_t W) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t y = (i / W) % H;
  T s = in[i];
  if (y > 0) s += in[i - W];
  if (y + 1 < H) s += in[i + W];
  out[i] = s * (T(1) / T(9));
}

template <typename T>
__global__ void blend_kernel(const T* x, const T* blurred, T* out, const double* weights, int64_t total,
                             int64_t per_image) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const T w = static_cast<T>(weights[i / per_image]);
  const T v = (T(1) - w) * x[i] + w * blurred[i];
  out[i] = v < T(0) ? T(0) : (v > T(1) ? T(1) : v);
}

template <typename T>
cudaError_t run(const ImageArgs& img, const double* weights, int64_t passes, T* scratch, cudaStream_t stream) {
  const int64_t total = img.batch * img.channels * img.height * img.width;
  if (total == 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((total + threads - 1) / threads);
  T* a = scratch;
  T* t = scratch + total;
  cudaMemcpyAsync(a, img.in, total * sizeof(T), cudaMemcpyDeviceToDevice, stream);
  for (int64_t k = 0; k < passes; ++k) {
    horizontal_kernel<T><<<blocks, threads, 0, stream>>>(a, t, total, img.width);
    vertical_kernel<T><<<blocks, threads, 0, stream>>>(t, a, total, img.height, img.width);
  }
  blend_kernel<T><<<blocks, threads, 0, stream>>>(static_cast<const T*>(img.in), a, static_cast<T*>(img.out),
                                                  weights, total, img.channels * img.height * img.width);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_corrupt_box_blur(const ImageArgs& img, const double* weights, int64_t passes, void* scratch,
                                    cudaStream_t stream) {
  return img.is_double ? run<double>(img, weights, passes, static_cast<double*>(scratch), stream)
                       : run<float>(img, weights, passes, static_cast<float*>(scratch), stream);
}

}  // namespace rtool::corrupt
