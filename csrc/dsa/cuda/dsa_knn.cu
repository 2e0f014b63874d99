// CUDA kernel for dsa_knn: one thread per (query, class) walks the class block in row order, computes
// each exact float64 squared distance (no fused multiply-add, the same arithmetic as the CPU re-rank) and
// insertion-sorts it into that pair's k output slots. Visiting rows in increasing order and inserting
// only on a strictly smaller distance breaks ties by the lowest row. Memory stays O(Q * C * k).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "dsa_launch.h"

namespace rtool::dsa {
namespace {

template <typename T>
__global__ void knn_kernel(KnnLaunch a) {
  const int64_t pair = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (pair >= a.num_queries * a.num_classes) return;
  const int64_t q = pair / a.num_classes, c = pair % a.num_classes;
  const T* query = static_cast<const T*>(a.queries) + q * a.dim;
  const T* refs = static_cast<const T*>(a.refs);
  double* dist = a.distances + pair * a.k;
  int64_t* index = a.indices + pair * a.k;
  for (int64_t t = 0; t < a.k; ++t) {
    dist[t] = INFINITY;
    index[t] = -1;
  }
  const int64_t skip = a.self_index[q];
  for (int64_t row = a.offsets[c]; row < a.offsets[c + 1]; ++row) {
    if (row == skip) continue;
    const T* ref = refs + row * a.dim;
    double sum = 0.0;
    for (int64_t d = 0; d < a.dim; ++d) {
      const double diff = __dsub_rn(static_cast<double>(query[d]), static_cast<double>(ref[d]));
      sum = __dadd_rn(sum, __dmul_rn(diff, diff));
    }
    if (!(sum < dist[a.k - 1])) continue;
    int64_t t = a.k - 1;
    while (t > 0 && sum < dist[t - 1]) {
      dist[t] = dist[t - 1];
      index[t] = index[t - 1];
      --t;
    }
    dist[t] = sum;
    index[t] = row;
  }
  for (int64_t t = 0; t < a.k; ++t) dist[t] = sqrt(dist[t]);
}

}  // namespace

cudaError_t launch_dsa_knn(const KnnLaunch& args, cudaStream_t stream) {
  const int64_t pairs = args.num_queries * args.num_classes;
  if (pairs == 0) return cudaSuccess;
  const int threads = 128;
  const unsigned blocks = static_cast<unsigned>((pairs + threads - 1) / threads);
  if (args.is_double) {
    knn_kernel<double><<<blocks, threads, 0, stream>>>(args);
  } else {
    knn_kernel<float><<<blocks, threads, 0, stream>>>(args);
  }
  return cudaGetLastError();
}

}  // namespace rtool::dsa
