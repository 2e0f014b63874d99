// CUDA kernel for the DeepFool step. Plain CUDA (raw pointers, sizes, a stream) so nvcc compiles this file
// in seconds; csrc/deepfool/cuda/deepfool_cuda.cpp turns tensors into these arguments.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "deepfool_launch.h"

namespace rtool::deepfool {
namespace {

constexpr int kThreads = 256;

// Sum of `value` over the block; every thread gets the result. `shared` holds kThreads / 32 doubles.
__device__ double block_sum(double value, double* shared) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_down_sync(0xffffffffu, value, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) shared[warp] = value;
  __syncthreads();
  double total = 0;
  for (int i = 0; i < kThreads / 32; ++i) total += shared[i];
  __syncthreads();  // shared is reused by the next call
  return total;
}

// Same rule as the CPU kernel: ratio |f_k| / |w_k|, zero norms and NaN never chosen, first minimum wins.
template <typename T>
__global__ void step_kernel(StepLaunch<T> a) {
  __shared__ double partial[kThreads / 32];
  const int64_t b = blockIdx.x;
  const T* fb = a.logit_diff + b * a.cands;
  const T* wb = a.grad_diff + b * a.cands * a.dims;
  T best = static_cast<T>(INFINITY), best_norm = 0;
  int64_t best_k = -1;
  for (int64_t k = 0; k < a.cands; ++k) {
    const T* wk = wb + k * a.dims;
    double squares = 0;
    for (int64_t d = threadIdx.x; d < a.dims; d += kThreads) squares += static_cast<double>(wk[d]) * wk[d];
    const T norm = static_cast<T>(sqrt(block_sum(squares, partial)));
    if (!(norm > 0)) continue;
    const T ratio = fabs(fb[k]) / norm;
    if (ratio < best) {
      best = ratio;
      best_norm = norm;
      best_k = k;
    }
  }
  if (threadIdx.x == 0) {
    a.chosen[b] = best_k;
    a.distance[b] = best;
  }
  T* out = a.step + b * a.dims;
  if (best_k < 0) {
    for (int64_t d = threadIdx.x; d < a.dims; d += kThreads) out[d] = 0;
    return;
  }
  const T scale = (best + a.step_eps) / best_norm;
  const T* wl = wb + best_k * a.dims;
  for (int64_t d = threadIdx.x; d < a.dims; d += kThreads) out[d] = scale * wl[d];
}

template <typename T>
cudaError_t launch(const StepLaunch<T>& args, cudaStream_t stream) {
  if (args.batch == 0) return cudaSuccess;
  step_kernel<T><<<static_cast<unsigned int>(args.batch), kThreads, 0, stream>>>(args);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_deepfool_step(const StepLaunch<float>& args, cudaStream_t stream) { return launch(args, stream); }
cudaError_t launch_deepfool_step(const StepLaunch<double>& args, cudaStream_t stream) { return launch(args, stream); }

}  // namespace rtool::deepfool
