// Mesh rasterizer: argument checks and the CPU registration of rasterize, rasterize_image and rasterize_backward.
#include "raster.h"

#include <torch/library.h>

namespace rtool::raster {
namespace {

void check_faces(const at::Tensor& faces, int64_t num_vertices, const at::Device& device, const char* op) {
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3, "rtool.", op, ": faces must be [F, 3] vertex ids, got shape ",
              faces.sizes());
  TORCH_CHECK(faces.scalar_type() == at::kLong, "rtool.", op, ": faces must be int64, got ", faces.scalar_type());
  TORCH_CHECK(faces.device() == device, "rtool.", op, ": faces are on ", faces.device(), " but vertices are on ",
              device);
  if (faces.numel() > 0) {
    const int64_t lo = faces.min().item<int64_t>(), hi = faces.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < num_vertices, "rtool.", op, ": faces holds vertex id ", (lo < 0 ? lo : hi),
                ", out of range for ", num_vertices, " vertices");
  }
}

void check_vertices(const at::Tensor& vertices, const char* op) {
  TORCH_CHECK(vertices.dim() == 3 && vertices.size(2) == 3, "rtool.", op,
              ": vertices must be [B, V, 3] (ndc x, ndc y, depth), got shape ", vertices.sizes());
  TORCH_CHECK(vertices.scalar_type() == at::kFloat || vertices.scalar_type() == at::kDouble, "rtool.", op,
              ": vertices must be float32 or float64, got ", vertices.scalar_type());
}

void check_rasterize_inputs(const at::Tensor& vertices, const at::Tensor& faces, const at::Tensor& colors,
                            int64_t image_size, double near, double far, const char* op) {
  check_vertices(vertices, op);
  check_faces(faces, vertices.size(1), vertices.device(), op);
  TORCH_CHECK(colors.dim() == 3 && colors.size(0) == vertices.size(0) && colors.size(1) == faces.size(0),
              "rtool.", op, ": colors must be [B, F, C] = [", vertices.size(0), ", ", faces.size(0),
              ", C], got shape ", colors.sizes());
  TORCH_CHECK(colors.scalar_type() == vertices.scalar_type(), "rtool.", op, ": colors must have the vertices' dtype ",
              vertices.scalar_type(), ", got ", colors.scalar_type());
  TORCH_CHECK(colors.device() == vertices.device(), "rtool.", op, ": colors are on ", colors.device(),
              " but vertices are on ", vertices.device());
  TORCH_CHECK(image_size > 0, "rtool.", op, ": image_size must be > 0, got ", image_size);
  TORCH_CHECK(near > 0 && far > near, "rtool.", op, ": need 0 < near < far, got near=", near, " far=", far);
}

}  // namespace

RasterProblem prepare_rasterize(const at::Tensor& vertices, const at::Tensor& faces, const at::Tensor& colors,
                                int64_t image_size, double near, double far, bool cull) {
  check_rasterize_inputs(vertices, faces, colors, image_size, near, far, "rasterize");
  const int64_t batch = vertices.size(0), channels = colors.size(2), s = image_size;
  const auto options = vertices.options();
  return RasterProblem{
      vertices.contiguous(),
      faces.contiguous(),
      colors.contiguous(),
      at::zeros({batch, channels, s, s}, options),
      at::full({batch, s, s}, -1, options.dtype(at::kLong)),
      at::zeros({batch, s, s, 3}, options),
      at::zeros({batch, s, s}, options),
      s,
      near,
      far,
      cull,
  };
}

RasterImageProblem prepare_rasterize_image(const at::Tensor& vertices, const at::Tensor& faces,
                                           const at::Tensor& colors, int64_t image_size, int64_t supersample,
                                           double near, double far, bool cull) {
  check_rasterize_inputs(vertices, faces, colors, image_size, near, far, "rasterize_image");
  TORCH_CHECK(supersample > 0, "rtool.rasterize_image: supersample must be > 0, got ", supersample);
  const int64_t s = image_size;
  return RasterImageProblem{
      vertices.contiguous(),
      faces.contiguous(),
      colors.contiguous(),
      at::empty({vertices.size(0), colors.size(2), s, s}, vertices.options()),
      s,
      supersample,
      near,
      far,
      cull,
  };
}

RasterBackwardProblem prepare_rasterize_backward(const at::Tensor& grad_image, const at::Tensor& image,
                                                 const at::Tensor& face_index, const at::Tensor& vertices,
                                                 const at::Tensor& faces, bool cull) {
  check_vertices(vertices, "rasterize_backward");
  check_faces(faces, vertices.size(1), vertices.device(), "rasterize_backward");
  TORCH_CHECK(image.dim() == 4 && image.size(0) == vertices.size(0) && image.size(2) == image.size(3),
              "rtool.rasterize_backward: image must be [B, C, S, S] with B = ", vertices.size(0), ", got shape ",
              image.sizes());
  TORCH_CHECK(grad_image.sizes() == image.sizes(), "rtool.rasterize_backward: grad_image has shape ",
              grad_image.sizes(), " but image has shape ", image.sizes());
  TORCH_CHECK(face_index.dim() == 3 && face_index.size(0) == image.size(0) && face_index.size(1) == image.size(2) &&
                  face_index.size(2) == image.size(3),
              "rtool.rasterize_backward: face_index must be [B, S, S] matching image ", image.sizes(), ", got shape ",
              face_index.sizes());
  TORCH_CHECK(face_index.scalar_type() == at::kLong, "rtool.rasterize_backward: face_index must be int64, got ",
              face_index.scalar_type());
  TORCH_CHECK(image.scalar_type() == vertices.scalar_type() && grad_image.scalar_type() == vertices.scalar_type(),
              "rtool.rasterize_backward: image and grad_image must have the vertices' dtype ", vertices.scalar_type());
  return RasterBackwardProblem{
      grad_image.contiguous(), image.contiguous(), face_index.contiguous(), vertices.contiguous(), faces.contiguous(),
      at::zeros(vertices.sizes(), vertices.options()), cull,
  };
}

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_cpu(const at::Tensor& vertices,
                                                                         const at::Tensor& faces,
                                                                         const at::Tensor& colors, int64_t image_size,
                                                                         double near, double far, bool cull) {
  RasterProblem problem = prepare_rasterize(vertices, faces, colors, image_size, near, far, cull);
  rasterize_cpu_kernel(problem);
  return {problem.image, problem.face_index, problem.bary, problem.depth};
}

at::Tensor rasterize_image_cpu(const at::Tensor& vertices, const at::Tensor& faces, const at::Tensor& colors,
                              int64_t image_size, int64_t supersample, double near, double far, bool cull) {
  RasterImageProblem problem =
      prepare_rasterize_image(vertices, faces, colors, image_size, supersample, near, far, cull);
  rasterize_image_cpu_kernel(problem);
  return problem.image;
}

at::Tensor rasterize_backward_cpu(const at::Tensor& grad_image, const at::Tensor& image, const at::Tensor& face_index,
                                  const at::Tensor& vertices, const at::Tensor& faces, bool cull) {
  RasterBackwardProblem problem = prepare_rasterize_backward(grad_image, image, face_index, vertices, faces, cull);
  rasterize_backward_cpu_kernel(problem);
  return problem.grad_vertices;
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CPU, m) {
  m.impl("rasterize", &rasterize_cpu);
  m.impl("rasterize_image", &rasterize_image_cpu);
  m.impl("rasterize_backward", &rasterize_backward_cpu);
}

}  // namespace rtool::raster
