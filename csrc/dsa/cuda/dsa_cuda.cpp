// CUDA registration for dsa_knn: turns the checked tensors into raw launch arguments.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "../dsa.h"
#include "dsa_launch.h"

namespace rtool::dsa {
namespace {

std::tuple<at::Tensor, at::Tensor> dsa_knn_cuda(const at::Tensor& queries, const at::Tensor& refs,
                                                const at::Tensor& class_offsets, int64_t k,
                                                const std::optional<at::Tensor>& self_index, int64_t chunk) {
  const c10::cuda::CUDAGuard guard(queries.device());
  KnnProblem problem = prepare_knn(queries, refs, class_offsets, k, self_index, chunk);
  const at::Tensor offsets = problem.offsets.to(queries.device());
  KnnLaunch launch{problem.queries.const_data_ptr(),
                   problem.refs.const_data_ptr(),
                   offsets.const_data_ptr<int64_t>(),
                   problem.self_index.const_data_ptr<int64_t>(),
                   problem.distances.mutable_data_ptr<double>(),
                   problem.indices.mutable_data_ptr<int64_t>(),
                   problem.queries.size(0),
                   offsets.numel() - 1,
                   problem.queries.size(1),
                   problem.k,
                   problem.queries.scalar_type() == at::kDouble};
  const cudaError_t err = launch_dsa_knn(launch, at::cuda::getCurrentCUDAStream());
  TORCH_CHECK(err == cudaSuccess, "rtool.dsa_knn: CUDA launch failed: ", cudaGetErrorString(err));
  return {problem.distances, problem.indices};
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CUDA, m) { m.impl("dsa_knn", &dsa_knn_cuda); }

}  // namespace rtool::dsa
