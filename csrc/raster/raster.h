#pragma once
// Mesh rasterizer: checked problems and kernel entry points (see rtool/ops/raster.py for the contract).
#include <ATen/ATen.h>

namespace rtool::raster {

struct RasterProblem {
  at::Tensor vertices;    // [B, V, 3] contiguous, float or double: ndc x, ndc y, camera depth
  at::Tensor faces;       // [F, 3] int64 contiguous, ids in [0, V)
  at::Tensor colors;      // [B, F, C] contiguous, vertices' dtype
  at::Tensor image;       // [B, C, S, S] out, background 0
  at::Tensor face_index;  // [B, S, S] int64 out, -1 = background
  at::Tensor bary;        // [B, S, S, 3] out, screen-space barycentrics (0 on background)
  at::Tensor depth;       // [B, S, S] out, perspective-correct camera depth (0 on background)
  int64_t size;
  double near, far;
  bool cull;
};

struct RasterImageProblem {
  at::Tensor vertices;  // [B, V, 3] contiguous, float or double
  at::Tensor faces;     // [F, 3] int64 contiguous, ids in [0, V)
  at::Tensor colors;    // [B, F, C] contiguous, vertices' dtype
  at::Tensor image;     // [B, C, S, S] out, uninitialised: the kernel writes every pixel
  int64_t size;         // S, the output side; samples are drawn at S * supersample
  int64_t supersample;
  double near, far;
  bool cull;
};

struct RasterBackwardProblem {
  at::Tensor grad_image;  // [B, C, S, S] contiguous
  at::Tensor image;       // [B, C, S, S] contiguous
  at::Tensor face_index;  // [B, S, S] int64 contiguous
  at::Tensor vertices;    // [B, V, 3] contiguous
  at::Tensor faces;       // [F, 3] int64 contiguous
  at::Tensor grad_vertices;  // [B, V, 3] out (zero-initialised)
  bool cull;
};

RasterProblem prepare_rasterize(const at::Tensor& vertices, const at::Tensor& faces, const at::Tensor& colors,
                                int64_t image_size, double near, double far, bool cull);
RasterImageProblem prepare_rasterize_image(const at::Tensor& vertices, const at::Tensor& faces,
                                           const at::Tensor& colors, int64_t image_size, int64_t supersample,
                                           double near, double far, bool cull);
RasterBackwardProblem prepare_rasterize_backward(const at::Tensor& grad_image, const at::Tensor& image,
                                                 const at::Tensor& face_index, const at::Tensor& vertices,
                                                 const at::Tensor& faces, bool cull);

void rasterize_cpu_kernel(RasterProblem& problem);
void rasterize_image_cpu_kernel(RasterImageProblem& problem);
void rasterize_backward_cpu_kernel(RasterBackwardProblem& problem);

}  // namespace rtool::raster
