// CUDA registration of the rasterizer: checked tensors -> raw launch arguments.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../raster.h"
#include "raster_launch.h"

namespace rtool::raster {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rasterize_cuda(const at::Tensor& vertices,
                                                                          const at::Tensor& faces,
                                                                          const at::Tensor& colors, int64_t image_size,
                                                                          double near, double far, bool cull) {
  const c10::cuda::CUDAGuard guard(vertices.device());
  RasterProblem p = prepare_rasterize(vertices, faces, colors, image_size, near, far, cull);
  const bool is_double = p.vertices.scalar_type() == at::kDouble;
  const int64_t batch = p.vertices.size(0), num_faces = p.faces.size(0);
  at::Tensor scratch = at::empty({static_cast<int64_t>(raster_scratch_bytes(batch, num_faces, is_double)) + 1},
                                 p.vertices.options().dtype(at::kByte));
  RasterLaunch launch{p.vertices.const_data_ptr(),
                      p.faces.const_data_ptr<int64_t>(),
                      p.colors.const_data_ptr(),
                      p.image.mutable_data_ptr(),
                      p.face_index.mutable_data_ptr<int64_t>(),
                      p.bary.mutable_data_ptr(),
                      p.depth.mutable_data_ptr(),
                      scratch.mutable_data_ptr(),
                      batch,
                      p.vertices.size(1),
                      num_faces,
                      p.colors.size(2),
                      p.size,
                      p.near,
                      p.far,
                      p.cull,
                      is_double};
  const cudaError_t err = launch_rasterize(launch, at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "rtool.rasterize: CUDA launch failed: ", cudaGetErrorString(err));
  return {p.image, p.face_index, p.bary, p.depth};
}

at::Tensor rasterize_image_cuda(const at::Tensor& vertices, const at::Tensor& faces, const at::Tensor& colors,
                               int64_t image_size, int64_t supersample, double near, double far, bool cull) {
  const c10::cuda::CUDAGuard guard(vertices.device());
  RasterImageProblem p = prepare_rasterize_image(vertices, faces, colors, image_size, supersample, near, far, cull);
  const bool is_double = p.vertices.scalar_type() == at::kDouble;
  const int64_t batch = p.vertices.size(0), num_faces = p.faces.size(0), s = p.size * p.supersample;
  at::Tensor scratch = at::empty({static_cast<int64_t>(raster_scratch_bytes(batch, num_faces, is_double)) + 1},
                                 p.vertices.options().dtype(at::kByte));
  at::Tensor sample_face = at::empty({batch, s, s}, p.vertices.options().dtype(at::kLong));
  RasterImageLaunch launch{p.vertices.const_data_ptr(),
                           p.faces.const_data_ptr<int64_t>(),
                           p.colors.const_data_ptr(),
                           p.image.mutable_data_ptr(),
                           sample_face.mutable_data_ptr<int64_t>(),
                           scratch.mutable_data_ptr(),
                           batch,
                           p.vertices.size(1),
                           num_faces,
                           p.colors.size(2),
                           p.size,
                           p.supersample,
                           p.near,
                           p.far,
                           p.cull,
                           is_double};
  const cudaError_t err = launch_rasterize_image(launch, at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "rtool.rasterize_image: CUDA launch failed: ", cudaGetErrorString(err));
  return p.image;
}

at::Tensor rasterize_backward_cuda(const at::Tensor& grad_image, const at::Tensor& image, const at::Tensor& face_index,
                                   const at::Tensor& vertices, const at::Tensor& faces, bool cull) {
  const c10::cuda::CUDAGuard guard(vertices.device());
  RasterBackwardProblem p = prepare_rasterize_backward(grad_image, image, face_index, vertices, faces, cull);
  RasterBackwardLaunch launch{p.grad_image.const_data_ptr(),
                              p.image.const_data_ptr(),
                              p.face_index.const_data_ptr<int64_t>(),
                              p.vertices.const_data_ptr(),
                              p.faces.const_data_ptr<int64_t>(),
                              p.grad_vertices.mutable_data_ptr(),
                              p.vertices.size(0),
                              p.vertices.size(1),
                              p.faces.size(0),
                              p.image.size(1),
                              p.image.size(2),
                              p.cull,
                              p.vertices.scalar_type() == at::kDouble};
  const cudaError_t err = launch_rasterize_backward(launch, at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "rtool.rasterize_backward: CUDA launch failed: ", cudaGetErrorString(err));
  return p.grad_vertices;
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CUDA, m) {
  m.impl("rasterize", &rasterize_cuda);
  m.impl("rasterize_image", &rasterize_image_cuda);
  m.impl("rasterize_backward", &rasterize_backward_cuda);
}

}  // namespace rtool::raster
