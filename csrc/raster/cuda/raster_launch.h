#pragma once
// Plain-C++ interface between the tensor-facing CUDA dispatch and the .cu kernels (no torch headers).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace rtool::raster {

struct RasterLaunch {
  const void* vertices;  // [B, V, 3] float or double
  const int64_t* faces;  // [F, 3]
  const void* colors;    // [B, F, C]
  void* image;           // [B, C, S, S], zero-filled
  int64_t* face_index;   // [B, S, S], filled with -1
  void* bary;            // [B, S, S, 3], zero-filled
  void* depth;           // [B, S, S], zero-filled
  void* scratch;         // raster_scratch_bytes(...) bytes
  int64_t batch, num_vertices, num_faces, channels, size;
  double near, far;
  bool cull, is_double;
};

struct RasterImageLaunch {
  const void* vertices;  // [B, V, 3] float or double
  const int64_t* faces;  // [F, 3]
  const void* colors;    // [B, F, C]
  void* image;           // [B, C, S, S], every pixel written
  int64_t* sample_face;  // [B, S * k, S * k] scratch: the nearest face of each sample, -1 = background
  void* scratch;         // raster_scratch_bytes(...) bytes
  int64_t batch, num_vertices, num_faces, channels, size, supersample;  // size: the output side S; k: supersample
  double near, far;
  bool cull, is_double;
};

struct RasterBackwardLaunch {
  const void* grad_image;  // [B, C, S, S]
  const void* image;       // [B, C, S, S]
  const int64_t* face_index;  // [B, S, S]
  const void* vertices;    // [B, V, 3]
  const int64_t* faces;    // [F, 3]
  void* grad_vertices;     // [B, V, 3], zero-filled
  int64_t batch, num_vertices, num_faces, channels, size;
  bool cull, is_double;
};

size_t raster_scratch_bytes(int64_t batch, int64_t num_faces, bool is_double);
cudaError_t launch_rasterize(const RasterLaunch& args, cudaStream_t stream);
cudaError_t launch_rasterize_image(const RasterImageLaunch& args, cudaStream_t stream);
cudaError_t launch_rasterize_backward(const RasterBackwardLaunch& args, cudaStream_t stream);

}  // namespace rtool::raster
