// CUDA twin of the rasterizer: one thread per face sets up its screen triangle, then one thread per pixel
// scans every face in id order (bounding-box reject first), so the nearest face and the tie-break equal
// the CPU kernel's. rasterize_image keeps the nearest face of each sample in a scratch buffer and averages
// k x k blocks with the CPU's block_mean. The backward runs one thread per pixel pair and adds into the
// vertices atomically.
#include <cuda_runtime.h>

#include <cstdint>

#include "../raster_math.h"
#include "raster_launch.h"

namespace rtool::raster {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void setup_kernel(const T* vertices, const int64_t* faces, int64_t batch, int64_t num_vertices,
                             int64_t num_faces, int64_t size, bool cull, ScreenFace<T>* screen) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= batch * num_faces) return;
  const int64_t b = i / num_faces, f = i % num_faces;
  screen[i] = screen_face(vertices + b * num_vertices * 3, faces + 3 * f, size, cull);
}

// The nearest drawn face at pixel centre (px, py) of one view's screen faces (-1: none), its depth and
// barycentrics: every face in id order, a strict '<' keeps the lower id on a tie.
template <typename T>
__device__ int64_t nearest_face(const ScreenFace<T>* faces, int64_t num_faces, T px, T py, T near, T far, T* best,
                                T* best_w) {
  *best = T(1) / T(0);
  int64_t best_face = -1;
  for (int64_t f = 0; f < num_faces; ++f) {
    const ScreenFace<T>& sf = faces[f];
    if (!sf.drawn) continue;
    const T xmin = fmin(sf.x[0], fmin(sf.x[1], sf.x[2])), xmax = fmax(sf.x[0], fmax(sf.x[1], sf.x[2]));
    const T ymin = fmin(sf.y[0], fmin(sf.y[1], sf.y[2])), ymax = fmax(sf.y[0], fmax(sf.y[1], sf.y[2]));
    if (px < xmin || px > xmax || py < ymin || py > ymax) continue;
    T w[3];
    if (!barycentrics(sf, px, py, w)) continue;
    const T z = interpolated_depth(sf, w);
    if (!(z >= near && z <= far)) continue;
    if (z < *best) {
      *best = z;
      best_face = f;
      best_w[0] = w[0];
      best_w[1] = w[1];
      best_w[2] = w[2];
    }
  }
  return best_face;
}

template <typename T>
__global__ void raster_kernel(RasterLaunch a, const ScreenFace<T>* screen) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t pixels = a.size * a.size;
  if (i >= a.batch * pixels) return;
  const int64_t b = i / pixels, pix = i % pixels;
  const int64_t r = pix / a.size, c = pix % a.size;
  T best;
  T best_w[3] = {T(0), T(0), T(0)};
  const int64_t best_face = nearest_face(screen + b * a.num_faces, a.num_faces, T(c), T(a.size - 1 - r), T(a.near),
                                         T(a.far), &best, best_w);
  if (best_face < 0) return;
  const int64_t out = b * pixels + pix;
  a.face_index[out] = best_face;
  static_cast<T*>(a.depth)[out] = best;
  T* bary = static_cast<T*>(a.bary) + 3 * out;
  bary[0] = best_w[0];
  bary[1] = best_w[1];
  bary[2] = best_w[2];
  const T* color = static_cast<const T*>(a.colors) + (b * a.num_faces + best_face) * a.channels;
  T* image = static_cast<T*>(a.image) + b * a.channels * pixels + pix;
  for (int64_t ch = 0; ch < a.channels; ++ch) image[ch * pixels] = color[ch];
}

// rasterize_image, step 1: the nearest face of every sample of the S * k grid.
template <typename T>
__global__ void sample_kernel(RasterImageLaunch a, const ScreenFace<T>* screen) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t s = a.size * a.supersample, samples = s * s;
  if (i >= a.batch * samples) return;
  const int64_t b = i / samples, pix = i % samples;
  const int64_t r = pix / s, c = pix % s;
  T best, w[3];
  a.sample_face[i] = nearest_face(screen + b * a.num_faces, a.num_faces, T(c), T(s - 1 - r), T(a.near), T(a.far),
                                  &best, w);
}

// rasterize_image, step 2: one thread per output pixel and channel averages its k x k samples.
template <typename T>
__global__ void resolve_kernel(RasterImageLaunch a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t out = a.size, k = a.supersample, s = out * k;
  if (i >= a.batch * a.channels * out * out) return;
  const int64_t c = i % out, r = (i / out) % out, ch = (i / (out * out)) % a.channels, b = i / (a.channels * out * out);
  const int64_t* block = a.sample_face + b * s * s + (r * k) * s + c * k;
  const T* color = static_cast<const T*>(a.colors) + b * a.num_faces * a.channels + ch;
  static_cast<T*>(a.image)[i] = block_mean(block, s, k, color, a.channels);
}

template <typename T>
__global__ void backward_kernel(RasterBackwardLaunch a) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t s = a.size, pixels = s * s;
  if (i >= a.batch * pixels * 2) return;
  const int axis = static_cast<int>(i % 2);
  const int64_t b = i / (2 * pixels), pix = (i / 2) % pixels;
  const int64_t r = pix / s, c = pix % s, r2 = r + axis, c2 = c + (1 - axis);
  if (r2 >= s || c2 >= s) return;
  const int64_t* ids = a.face_index + b * pixels;
  const int64_t fp = ids[r * s + c], fq = ids[r2 * s + c2];
  if (fp == fq) return;
  const T* img = static_cast<const T*>(a.image) + b * a.channels * pixels;
  const T* gimg = static_cast<const T*>(a.grad_image) + b * a.channels * pixels;
  T coef = T(0);
  for (int64_t ch = 0; ch < a.channels; ++ch) {
    const int64_t ip = ch * pixels + r * s + c, iq = ch * pixels + r2 * s + c2;
    coef += (img[ip] - img[iq]) * T(0.5) * (gimg[ip] + gimg[iq]);
  }
  if (coef == T(0)) return;
  const T* view = static_cast<const T*>(a.vertices) + b * a.num_vertices * 3;
  ScreenFace<T> sp, sq;
  if (fp >= 0) sp = screen_face(view, a.faces + 3 * fp, s, a.cull);
  if (fq >= 0) sq = screen_face(view, a.faces + 3 * fq, s, a.cull);
  T out_p[3][2], out_q[3][2];
  const T dir = axis == 0 ? T(1) : T(-1);
  pair_gradient(fp >= 0 ? &sp : nullptr, fq >= 0 ? &sq : nullptr, T(c), T(s - 1 - r), T(c2), T(s - 1 - r2), axis,
                dir, coef, out_p, out_q);
  T* grad = static_cast<T*>(a.grad_vertices) + b * a.num_vertices * 3;
  const T half_s = T(0.5) * T(s);
  for (int side = 0; side < 2; ++side) {
    const int64_t f = side == 0 ? fp : fq;
    if (f < 0) continue;
    T(*out)[2] = side == 0 ? out_p : out_q;
    for (int k = 0; k < 3; ++k) {
      const int64_t v = a.faces[3 * f + k];
      if (out[k][0] != T(0)) atomicAdd(grad + 3 * v, out[k][0] * half_s);
      if (out[k][1] != T(0)) atomicAdd(grad + 3 * v + 1, out[k][1] * half_s);
    }
  }
}

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

template <typename T>
cudaError_t rasterize_typed(const RasterLaunch& a, cudaStream_t stream) {
  auto* screen = static_cast<ScreenFace<T>*>(a.scratch);
  const int64_t faces = a.batch * a.num_faces, pixels = a.batch * a.size * a.size;
  if (faces == 0 || pixels == 0) return cudaSuccess;
  setup_kernel<T><<<blocks_for(faces), kThreads, 0, stream>>>(static_cast<const T*>(a.vertices), a.faces, a.batch,
                                                               a.num_vertices, a.num_faces, a.size, a.cull, screen);
  raster_kernel<T><<<blocks_for(pixels), kThreads, 0, stream>>>(a, screen);
  return cudaGetLastError();
}

template <typename T>
cudaError_t rasterize_image_typed(const RasterImageLaunch& a, cudaStream_t stream) {
  auto* screen = static_cast<ScreenFace<T>*>(a.scratch);
  const int64_t faces = a.batch * a.num_faces, s = a.size * a.supersample;
  const int64_t samples = a.batch * s * s, outputs = a.batch * a.channels * a.size * a.size;
  if (outputs == 0) return cudaSuccess;
  if (faces > 0)
    setup_kernel<T><<<blocks_for(faces), kThreads, 0, stream>>>(static_cast<const T*>(a.vertices), a.faces, a.batch,
                                                                 a.num_vertices, a.num_faces, s, a.cull, screen);
  sample_kernel<T><<<blocks_for(samples), kThreads, 0, stream>>>(a, screen);
  resolve_kernel<T><<<blocks_for(outputs), kThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_typed(const RasterBackwardLaunch& a, cudaStream_t stream) {
  const int64_t pairs = a.batch * a.size * a.size * 2;
  if (pairs == 0 || a.num_faces == 0) return cudaSuccess;
  backward_kernel<T><<<blocks_for(pairs), kThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace

size_t raster_scratch_bytes(int64_t batch, int64_t num_faces, bool is_double) {
  const size_t one = is_double ? sizeof(ScreenFace<double>) : sizeof(ScreenFace<float>);
  return static_cast<size_t>(batch * num_faces) * one;
}

cudaError_t launch_rasterize(const RasterLaunch& args, cudaStream_t stream) {
  return args.is_double ? rasterize_typed<double>(args, stream) : rasterize_typed<float>(args, stream);
}

cudaError_t launch_rasterize_image(const RasterImageLaunch& args, cudaStream_t stream) {
  return args.is_double ? rasterize_image_typed<double>(args, stream) : rasterize_image_typed<float>(args, stream);
}

cudaError_t launch_rasterize_backward(const RasterBackwardLaunch& args, cudaStream_t stream) {
  return args.is_double ? backward_typed<double>(args, stream) : backward_typed<float>(args, stream);
}

}  // namespace rtool::raster
