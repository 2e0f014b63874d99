#pragma once
// Plain-C++ interface between the tensor-facing CUDA dispatch and the dsa .cu kernels (no torch headers).
#include <cuda_runtime.h>

#include <cstdint>

namespace rtool::dsa {

struct KnnLaunch {
  const void* queries;        // [Q, D], float32 or float64 (see `is_double`), contiguous
  const void* refs;           // [N, D], same dtype, contiguous
  const int64_t* offsets;     // [C + 1] on the device
  const int64_t* self_index;  // [Q]: the reference row query q skips, or -1
  double* distances;          // [Q, C, k] out
  int64_t* indices;           // [Q, C, k] out
  int64_t num_queries, num_classes, dim, k;
  bool is_double;
};

// Returns the launch error, if any.
cudaError_t launch_dsa_knn(const KnnLaunch& args, cudaStream_t stream);

}  // namespace rtool::dsa
