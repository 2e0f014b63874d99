#pragma once
// Per-class k nearest reference traces (surprise adequacy): shared argument checks and kernel entries.
#include <ATen/ATen.h>

#include <optional>

namespace rtool::dsa {

// Everything a kernel needs, already checked. References are sorted into contiguous class blocks:
// class c owns rows [offsets[c], offsets[c+1]) of `refs`.
struct KnnProblem {
  at::Tensor queries;     // [Q, D] float32 or float64, contiguous
  at::Tensor refs;        // [N, D] same dtype, contiguous
  at::Tensor offsets;     // [C + 1] int64 on the CPU (read on the host), 0 = offsets[0] <= ... <= offsets[C] = N
  at::Tensor self_index;  // [Q] int64: the reference row query q must skip, or -1 (always allocated)
  at::Tensor distances;   // [Q, C, k] float64 out: exact Euclidean distances, ascending, +inf past the class end
  at::Tensor indices;     // [Q, C, k] int64 out: reference rows, -1 past the class end
  int64_t k;
  int64_t chunk;          // reference rows per distance block (bounds the working memory)
};

KnnProblem prepare_knn(const at::Tensor& queries, const at::Tensor& refs, const at::Tensor& class_offsets,
                       int64_t k, const std::optional<at::Tensor>& self_index, int64_t chunk);

void dsa_knn_cpu_kernel(KnnProblem& problem);

}  // namespace rtool::dsa
