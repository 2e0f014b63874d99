// CUDA kernels for the Score-CAM masks. Plain CUDA (raw pointers, sizes, a stream) so nvcc compiles this
// file in seconds; csrc/scorecam/cuda/scorecam_cuda.cpp turns tensors into these arguments.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "../bilinear.h"
#include "scorecam_launch.h"

namespace rtool::scorecam {
namespace {

constexpr int kRangeThreads = 256;

template <typename T>
__device__ __forceinline__ float to_float(T v) { return static_cast<float>(v); }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v) { return static_cast<T>(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

// Upsampled value of one map at output pixel (y, x), same arithmetic order as the CPU kernel.
__device__ __forceinline__ float upsampled(const float* map, const MaskLaunch& a, int64_t y, int64_t x, bool relu) {
  const BilinearTap ty = bilinear_tap(y, a.map_h, a.height);
  const BilinearTap tx = bilinear_tap(x, a.map_w, a.width);
  float v00 = map[ty.lo * a.map_w + tx.lo], v01 = map[ty.lo * a.map_w + tx.hi];
  float v10 = map[ty.hi * a.map_w + tx.lo], v11 = map[ty.hi * a.map_w + tx.hi];
  if (relu) {
    v00 = fmaxf(v00, 0.f);
    v01 = fmaxf(v01, 0.f);
    v10 = fmaxf(v10, 0.f);
    v11 = fmaxf(v11, 0.f);
  }
  const float top = tx.w_lo * v00 + tx.w_hi * v01;
  const float bottom = tx.w_lo * v10 + tx.w_hi * v11;
  return ty.w_lo * top + ty.w_hi * bottom;
}

// One block per row: min and max of the upsampled map, then the shift and divisor of its mask.
__global__ void range_kernel(MaskLaunch a, float* ranges, float* shifts, float* denoms) {
  const int64_t r = blockIdx.x;
  const float* map = a.activations + (a.row_image[r] * a.map_channels + a.row_channel[r]) * a.map_h * a.map_w;
  const bool parity = a.mode == 0;
  float lo = FLT_MAX, hi = -FLT_MAX;
  const int64_t pixels = a.height * a.width;
  for (int64_t p = threadIdx.x; p < pixels; p += blockDim.x) {
    const float v = upsampled(map, a, p / a.width, p % a.width, parity);
    lo = fminf(lo, v);
    hi = fmaxf(hi, v);
  }
  __shared__ float s_lo[kRangeThreads], s_hi[kRangeThreads];
  s_lo[threadIdx.x] = lo;
  s_hi[threadIdx.x] = hi;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      s_lo[threadIdx.x] = fminf(s_lo[threadIdx.x], s_lo[threadIdx.x + stride]);
      s_hi[threadIdx.x] = fmaxf(s_hi[threadIdx.x], s_hi[threadIdx.x + stride]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const float range = effective_range(s_lo[0], s_hi[0]);
    ranges[r] = range;
    shifts[r] = parity ? 0.f : s_lo[0];
    denoms[r] = parity ? (range > 0.f ? range : 1.f) : range + a.eps;
    // A constant map in minmax mode is a zero mask: (U - min) / inf = 0.
    if (!parity && range == 0.f) denoms[r] = INFINITY;
  }
}

// One thread per (row, pixel): recompute the upsampled value, write every image channel.
template <typename T>
__global__ void write_kernel(MaskLaunch a, const float* shifts, const float* denoms) {
  const int64_t pixels = a.height * a.width;
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t r = blockIdx.y;
  if (p >= pixels) return;
  const int64_t b = a.row_image[r];
  const float* map = a.activations + (b * a.map_channels + a.row_channel[r]) * a.map_h * a.map_w;
  const float m = (upsampled(map, a, p / a.width, p % a.width, a.mode == 0) - shifts[r]) / denoms[r];
  const T* image = static_cast<const T*>(a.images) + b * a.in_channels * pixels;
  T* out = static_cast<T*>(a.masked) + r * a.in_channels * pixels;
  for (int64_t c = 0; c < a.in_channels; ++c) {
    const int64_t i = a.channels_last ? p * a.in_channels + c : c * pixels + p;
    out[i] = from_float<T>(to_float(image[i]) * m);
  }
}

template <typename T>
cudaError_t launch_typed(const MaskLaunch& a, float* ranges, float* scratch, cudaStream_t stream) {
  float* shifts = scratch;
  float* denoms = scratch + a.rows;
  range_kernel<<<static_cast<unsigned>(a.rows), kRangeThreads, 0, stream>>>(a, ranges, shifts, denoms);
  const int threads = 256;
  const int64_t pixels = a.height * a.width;
  // Rows go on grid.y (at most 65535 per launch), so large row counts are split.
  constexpr int64_t kMaxRowsPerLaunch = 65535;
  for (int64_t first = 0; first < a.rows; first += kMaxRowsPerLaunch) {
    MaskLaunch part = a;
    const int64_t count = (a.rows - first < kMaxRowsPerLaunch) ? a.rows - first : kMaxRowsPerLaunch;
    part.row_image += first;
    part.row_channel += first;
    part.masked = static_cast<T*>(a.masked) + first * a.in_channels * pixels;
    part.rows = count;
    const dim3 grid(static_cast<unsigned>((pixels + threads - 1) / threads), static_cast<unsigned>(count));
    write_kernel<T><<<grid, threads, 0, stream>>>(part, shifts + first, denoms + first);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_scorecam_masks(const MaskLaunch& args, float* ranges, float* scratch, cudaStream_t stream) {
  if (args.rows == 0) return cudaSuccess;
  switch (args.dtype) {
    case MaskDtype::kFloat32: return launch_typed<float>(args, ranges, scratch, stream);
    case MaskDtype::kFloat64: return launch_typed<double>(args, ranges, scratch, stream);
    case MaskDtype::kFloat16: return launch_typed<__half>(args, ranges, scratch, stream);
    case MaskDtype::kBFloat16: return launch_typed<__nv_bfloat16>(args, ranges, scratch, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace rtool::scorecam
