// CUDA kernels of rtool.corrupt_resample: pixelate (one thread per output element), and PIL's bilinear
// passes (one kernel per pass, one thread per output element computing its own taps with the CPU's
// arithmetic), between a load kernel (8-bit values when quantizing) and a store kernel.
#include <cuda_runtime.h>

#include <cstdint>

#include "../corrupt_math.h"
#include "corrupt_launch.h"

namespace rtool::corrupt {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t total) { return static_cast<unsigned>((total + kThreads - 1) / kThreads); }

template <typename T>
__global__ void pixelate_kernel(const T* in, T* out, const int64_t* params, int64_t total, int64_t C, int H, int W) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t plane = i / (static_cast<int64_t>(H) * W);
  const int y = static_cast<int>((i / W) % H), x = static_cast<int>(i % W);
  const int k = static_cast<int>(params[plane / C]);
  const int ny = (H / k) * k, nx = (W / k) * k;
  const int by = reflect_index(y - (H - ny) / 2, ny) / k, bx = reflect_index(x - (W - nx) / 2, nx) / k;
  const T* src = in + plane * H * W;
  T s = T(0);
  for (int a = 0; a < k; ++a)
    for (int b = 0; b < k; ++b) s += src[(by * k + a) * W + bx * k + b];
  out[i] = s / static_cast<T>(k * k);
}

template <typename T>
__global__ void load_kernel(const T* in, T* out, bool quantize, int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  out[i] = quantize ? static_cast<T>(clip8(static_cast<int>(in[i] * T(255)))) : in[i];
}

template <typename T>
__global__ void store_kernel(const T* in, T* out, bool quantize, int64_t total) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  out[i] = quantize ? in[i] / T(255) : in[i];
}

// The geometry of pass `step` for one image: along `axis`, `in_len` samples from `offset` to `out_len`,
// producing an out_h x out_w plane.
struct Pass {
  int axis, offset, in_len, out_len, out_h, out_w;
};

__device__ Pass pass_geometry(const int64_t* q, int mode, int step, int H, int W) {
  if (mode == 1) {
    const int h = static_cast<int>(q[0]), w = static_cast<int>(q[1]);
    switch (step) {
      case 0: return {1, 0, W, w, H, w};
      case 1: return {0, 0, H, h, h, w};
      case 2: return {1, 0, w, W, h, W};
      default: return {0, 0, h, H, H, W};
    }
  }
  const int axis = static_cast<int>(q[0]), cut = static_cast<int>(q[1]);
  return axis == 0 ? Pass{0, cut, H - cut, H, H, W} : Pass{1, cut, W - cut, W, H, W};
}

template <typename T>
__global__ void pass_kernel(const T* in, T* out, const int64_t* params, int64_t width, int mode, int step,
                            bool fixed, int64_t total, int64_t C, int H, int W) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= total) return;
  const int64_t plane = i / (static_cast<int64_t>(H) * W);
  const int y = static_cast<int>((i / W) % H), x = static_cast<int>(i % W);
  const Pass p = pass_geometry(params + (plane / C) * width, mode, step, H, W);
  if (y >= p.out_h || x >= p.out_w) return;
  double weights[kMaxTaps];
  int first;
  const int o = p.axis == 1 ? x : y;
  const int n = pil_taps(p.in_len, p.out_len, o, &first, weights);
  first += p.offset;
  const T* src = in + plane * H * W + (p.axis == 1 ? static_cast<int64_t>(y) * W + first
                                                    : static_cast<int64_t>(first) * W + x);
  const int64_t step_in = p.axis == 1 ? 1 : W;
  T* dst = out + plane * H * W + static_cast<int64_t>(y) * W + x;
  if (fixed) {
    int ss = 1 << (kPrecisionBits - 1);
    for (int t = 0; t < n; ++t) ss += static_cast<int>(src[t * step_in]) * pil_fixed_weight(weights[t]);
    *dst = static_cast<T>(pil_clip_fixed(ss));
  } else {
    T ss = T(0);
    for (int t = 0; t < n; ++t) ss += src[t * step_in] * static_cast<T>(weights[t]);
    *dst = ss;
  }
}

template <typename T>
cudaError_t run(const ImageArgs& img, const int64_t* params, int64_t width, int mode, bool quantize, T* scratch,
                cudaStream_t stream) {
  const int64_t total = img.batch * img.channels * img.height * img.width;
  if (total == 0) return cudaSuccess;
  const int H = static_cast<int>(img.height), W = static_cast<int>(img.width);
  const T* in = static_cast<const T*>(img.in);
  T* out = static_cast<T*>(img.out);
  const unsigned blocks = blocks_for(total);
  if (mode == 0) {
    pixelate_kernel<T><<<blocks, kThreads, 0, stream>>>(in, out, params, total, img.channels, H, W);
    return cudaGetLastError();
  }
  T* a = scratch;
  T* t = scratch + total;
  load_kernel<T><<<blocks, kThreads, 0, stream>>>(in, a, quantize, total);
  const int steps = mode == 1 ? 4 : 1;
  for (int s = 0; s < steps; ++s) {
    pass_kernel<T><<<blocks, kThreads, 0, stream>>>(a, t, params, width, mode, s, quantize, total, img.channels, H, W);
    T* swap = a;
    a = t;
    t = swap;
  }
  store_kernel<T><<<blocks, kThreads, 0, stream>>>(a, out, quantize, total);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_corrupt_resample(const ImageArgs& img, const int64_t* params, int64_t param_width, int mode,
                                    bool quantize, void* scratch, cudaStream_t stream) {
  return img.is_double ? run<double>(img, params, param_width, mode, quantize, static_cast<double*>(scratch), stream)
                       : run<float>(img, params, param_width, mode, quantize, static_cast<float*>(scratch), stream);
}

}  // namespace rtool::corrupt
