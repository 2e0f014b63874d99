// dsa_knn: argument checks and the CPU registration.
#include "dsa.h"

#include <torch/library.h>

namespace rtool::dsa {

KnnProblem prepare_knn(const at::Tensor& queries, const at::Tensor& refs, const at::Tensor& class_offsets,
                       int64_t k, const std::optional<at::Tensor>& self_index, int64_t chunk) {
  TORCH_CHECK(queries.dim() == 2, "rtool.dsa_knn: queries must be 2-D [Q, D], got shape ", queries.sizes());
  TORCH_CHECK(refs.dim() == 2, "rtool.dsa_knn: refs must be 2-D [N, D], got shape ", refs.sizes());
  TORCH_CHECK(queries.scalar_type() == at::kFloat || queries.scalar_type() == at::kDouble,
              "rtool.dsa_knn: queries must be float32 or float64, got ", queries.scalar_type());
  TORCH_CHECK(refs.scalar_type() == queries.scalar_type(), "rtool.dsa_knn: refs must have the dtype of queries (",
              queries.scalar_type(), "), got ", refs.scalar_type());
  TORCH_CHECK(queries.size(1) == refs.size(1), "rtool.dsa_knn: queries have ", queries.size(1),
              " features but refs have ", refs.size(1));
  TORCH_CHECK(refs.device() == queries.device(), "rtool.dsa_knn: refs are on ", refs.device(),
              " but queries are on ", queries.device());
  TORCH_CHECK(class_offsets.dim() == 1 && class_offsets.numel() >= 1,
              "rtool.dsa_knn: class_offsets must be 1-D [C + 1], got shape ", class_offsets.sizes());
  TORCH_CHECK(class_offsets.scalar_type() == at::kLong, "rtool.dsa_knn: class_offsets must be int64, got ",
              class_offsets.scalar_type());
  TORCH_CHECK(k >= 1, "rtool.dsa_knn: k must be >= 1, got ", k);
  TORCH_CHECK(chunk >= 1, "rtool.dsa_knn: chunk must be >= 1, got ", chunk);

  const int64_t num_queries = queries.size(0), num_refs = refs.size(0);
  at::Tensor offsets = class_offsets.to(at::kCPU).contiguous();
  const int64_t* off = offsets.const_data_ptr<int64_t>();
  const int64_t num_classes = offsets.numel() - 1;
  TORCH_CHECK(off[0] == 0, "rtool.dsa_knn: class_offsets[0] must be 0, got ", off[0]);
  TORCH_CHECK(off[num_classes] == num_refs, "rtool.dsa_knn: class_offsets[-1] must equal the number of refs (",
              num_refs, "), got ", off[num_classes]);
  for (int64_t c = 0; c < num_classes; ++c) {
    TORCH_CHECK(off[c] <= off[c + 1], "rtool.dsa_knn: class_offsets must be non-decreasing, got ", off[c],
                " then ", off[c + 1], " at position ", c);
  }

  at::Tensor skip;
  if (self_index.has_value()) {
    const at::Tensor& s = *self_index;
    TORCH_CHECK(s.dim() == 1 && s.size(0) == num_queries, "rtool.dsa_knn: self_index must be 1-D [Q] with Q = ",
                num_queries, ", got shape ", s.sizes());
    TORCH_CHECK(s.scalar_type() == at::kLong, "rtool.dsa_knn: self_index must be int64, got ", s.scalar_type());
    TORCH_CHECK(s.device() == queries.device(), "rtool.dsa_knn: self_index is on ", s.device(),
                " but queries are on ", queries.device());
    if (s.numel() > 0) {
      const int64_t lo = s.min().item<int64_t>(), hi = s.max().item<int64_t>();
      TORCH_CHECK(lo >= -1 && hi < num_refs, "rtool.dsa_knn: self_index holds ", (lo < -1 ? lo : hi),
                  ", expected -1 (no exclusion) or a reference row in [0, ", num_refs, ")");
    }
    skip = s.contiguous();
  } else {
    skip = at::full({num_queries}, -1, queries.options().dtype(at::kLong));
  }

  KnnProblem problem{
      queries.contiguous(),
      refs.contiguous(),
      offsets,
      skip,
      at::empty({num_queries, num_classes, k}, queries.options().dtype(at::kDouble)),
      at::empty({num_queries, num_classes, k}, queries.options().dtype(at::kLong)),
      k,
      chunk,
  };
  return problem;
}

namespace {

std::tuple<at::Tensor, at::Tensor> dsa_knn_cpu(const at::Tensor& queries, const at::Tensor& refs,
                                               const at::Tensor& class_offsets, int64_t k,
                                               const std::optional<at::Tensor>& self_index, int64_t chunk) {
  KnnProblem problem = prepare_knn(queries, refs, class_offsets, k, self_index, chunk);
  dsa_knn_cpu_kernel(problem);
  return {problem.distances, problem.indices};
}

}  // namespace

TORCH_LIBRARY_IMPL(rtool, CPU, m) { m.impl("dsa_knn", &dsa_knn_cpu); }

}  // namespace rtool::dsa
