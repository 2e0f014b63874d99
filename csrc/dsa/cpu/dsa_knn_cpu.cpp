// CPU kernel for dsa_knn. The queries are split into blocks, one task per block (coarse parallelism: no
// synchronisation inside a call). Per block and per class, the references are visited in chunks; the
// GEMM form ||q||^2 + ||r||^2 - 2 q.r of the centred data, in the input precision, gives approximate
// squared distances (through at::mm for wide traces, through a fused loop over a transposed copy for
// narrow ones, where a GEMM with a tiny inner size is write-bound), a scan keeps every row that could
// still be among the k nearest given a bound on the rounding error, and at the class end the surviving
// candidates are re-ranked by their exact float64 distance (ties: lowest row). Working memory: one
// centred copy of refs plus O(block * chunk) per thread.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "../dsa.h"

namespace rtool::dsa {
namespace {

constexpr int64_t kMaxQueryBlock = 256;
constexpr int64_t kMinQueryBlock = 16;
constexpr int64_t kFusedMaxDim = 32;  // narrower traces skip BLAS (a GEMM with a tiny inner size is write-bound)
constexpr int64_t kFusedTile = 512;   // reference columns per fused tile: the transposed tile stays in L1
constexpr int64_t kPerGroup = 16;    // rows tested together against the running threshold
constexpr double kInf = std::numeric_limits<double>::infinity();

// The hot loops are compiled twice, for x86-64-v3 (AVX2, FMA) and the baseline; the loader picks one.
#define RTOOL_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))

// How the rows of one distance block are grouped for the threshold test.
struct Groups {
  int64_t count, per_group;
  static Groups of(int64_t n) {
    const int64_t count = std::max<int64_t>(8, ((n + kPerGroup - 1) / kPerGroup + 7) / 8 * 8);
    return {count, (n + count - 1) / count};
  }
  int64_t padded() const { return count * per_group; }
};

// The running state of one query within one class.
template <typename T>
struct RowState {
  std::vector<double> upper_heap;                      // max-heap of the k smallest upper bounds seen
  std::vector<std::pair<double, int64_t>> candidates;  // (lower bound, row)
  std::vector<T> scratch;

  void reset() {
    upper_heap.clear();
    candidates.clear();
  }
  double threshold(int64_t k) const {
    return static_cast<int64_t>(upper_heap.size()) < k ? kInf : upper_heap.front();
  }
  void prune(double limit) {
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [limit](const auto& c) { return c.first > limit; }),
                     candidates.end());
  }
  void accept(double lower, double width, int64_t row, int64_t k) {
    candidates.emplace_back(lower, row);
    const double upper = lower + width;
    if (static_cast<int64_t>(upper_heap.size()) < k) {
      upper_heap.push_back(upper);
      std::push_heap(upper_heap.begin(), upper_heap.end());
    } else if (upper < upper_heap.front()) {
      std::pop_heap(upper_heap.begin(), upper_heap.end());
      upper_heap.back() = upper;
      std::push_heap(upper_heap.begin(), upper_heap.end());
    }
    if (static_cast<int64_t>(candidates.size()) > 4 * k + 256) prune(threshold(k));
  }
  // Offers rows [first, first + n) with partial values val[j] = |r_j|^2 - 2 q.r_j: the squared distance
  // is within `bound` of qsq + val[j]. Rows are grouped with a stride (group g = rows g, g + G, g + 2G, ...
  // for G = groups.count) so that the group minima are vertical SIMD minima; a group whose minimum cannot
  // beat the threshold is skipped whole.
  void offer(const T* val, const T* group_min, const Groups& groups, int64_t n, int64_t first, double qsq,
             double bound, int64_t k, int64_t skip_row) {
    if (upper_heap.empty() && n > k) {
      start(val, n, first, qsq, bound, k, skip_row);
      return;
    }
    T cut = cut_for(threshold(k), qsq, bound);
    for (int64_t g = 0; g < groups.count; ++g) {
      if (!(group_min[g] <= cut)) continue;
      for (int64_t j = g; j < n; j += groups.count) {
        if (!(val[j] <= cut)) continue;
        const int64_t row = first + j;
        if (row == skip_row) continue;
        const double lower = qsq + static_cast<double>(val[j]) - bound;
        const double limit = threshold(k);
        if (lower > limit) continue;
        accept(lower, 2.0 * bound, row, k);
        const double updated = threshold(k);
        if (updated != limit) cut = cut_for(updated, qsq, bound);
      }
    }
  }
  // The first block of a class in one pass: the k smallest values (nth_element) give the threshold at
  // once, instead of the many heap updates a scan in row order makes while it falls.
  void start(const T* val, int64_t n, int64_t first, double qsq, double bound, int64_t k, int64_t skip_row) {
    scratch.clear();
    for (int64_t j = 0; j < n; ++j) {
      if (first + j != skip_row) scratch.push_back(val[j]);
    }
    const int64_t count = std::min<int64_t>(k, static_cast<int64_t>(scratch.size()));
    if (count > 0) std::nth_element(scratch.begin(), scratch.begin() + (count - 1), scratch.end());
    for (int64_t t = 0; t < count; ++t) upper_heap.push_back(qsq + static_cast<double>(scratch[t]) + bound);
    std::make_heap(upper_heap.begin(), upper_heap.end());
    const double limit = threshold(k);
    for (int64_t j = 0; j < n; ++j) {
      const double lower = qsq + static_cast<double>(val[j]) - bound;
      if (lower <= limit && first + j != skip_row) candidates.emplace_back(lower, first + j);
    }
  }
  // val[j] <= limit - qsq + bound is necessary for row j to be a candidate; that limit rounded up.
  static T cut_for(double limit, double qsq, double bound) {
    if (limit == kInf) return std::numeric_limits<T>::infinity();
    return std::nextafter(static_cast<T>(limit - qsq + bound), std::numeric_limits<T>::infinity());
  }
};

// group_min[g] = min over t of val[t * G + g] (G = groups.count); val is padded with +inf to G * per_group.
template <typename T>
__attribute__((always_inline)) inline void group_mins_impl(T* val, int64_t n, const Groups& groups, T* group_min) {
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t j = n; j < groups.count * groups.per_group; ++j) val[j] = inf;
  for (int64_t g = 0; g < groups.count; ++g) group_min[g] = inf;
  for (int64_t t = 0; t < groups.per_group; ++t) {
    const T* row = val + t * groups.count;
#pragma omp simd
    for (int64_t g = 0; g < groups.count; ++g) group_min[g] = std::min(group_min[g], row[g]);
  }
}

// val[j] = rsq[j] - 2 * sum_d q[d] * rt[d * stride + j], j < n (rt: a transposed tile), then the group minima.
template <typename T>
__attribute__((always_inline)) inline void fused_partial_impl(const T* q, const T* rt, const T* rsq, int64_t dim,
                                                              int64_t stride, int64_t n, T* val, T* group_min) {
  // Blocks of kLanes rows keep their sums in registers across d.
  constexpr int64_t kLanes = 64 / sizeof(T) * 2;
  int64_t j0 = 0;
  for (; j0 + kLanes <= n; j0 += kLanes) {
    T acc[kLanes] = {};
    for (int64_t d = 0; d < dim; ++d) {
      const T qd = q[d];
      const T* r = rt + d * stride + j0;
#pragma omp simd
      for (int64_t l = 0; l < kLanes; ++l) acc[l] += qd * r[l];
    }
#pragma omp simd
    for (int64_t l = 0; l < kLanes; ++l) val[j0 + l] = rsq[j0 + l] - 2 * acc[l];
  }
  for (int64_t j = j0; j < n; ++j) {
    T acc = 0;
    for (int64_t d = 0; d < dim; ++d) acc += q[d] * rt[d * stride + j];
    val[j] = rsq[j] - 2 * acc;
  }
  group_mins_impl(val, n, Groups::of(n), group_min);
}
RTOOL_SIMD_CLONES void fused_partial(const float* q, const float* rt, const float* rsq, int64_t dim, int64_t stride,
                                     int64_t n, float* val, float* group_min) {
  fused_partial_impl(q, rt, rsq, dim, stride, n, val, group_min);
}
RTOOL_SIMD_CLONES void fused_partial(const double* q, const double* rt, const double* rsq, int64_t dim,
                                     int64_t stride, int64_t n, double* val, double* group_min) {
  fused_partial_impl(q, rt, rsq, dim, stride, n, val, group_min);
}

// val[j] = rsq[j] - 2 dot[j], then the group minima.
template <typename T>
__attribute__((always_inline)) inline void gemm_partial_impl(const T* dot, const T* rsq, int64_t n, T* val,
                                                             T* group_min) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) val[j] = rsq[j] - 2 * dot[j];
  group_mins_impl(val, n, Groups::of(n), group_min);
}
RTOOL_SIMD_CLONES void gemm_partial(const float* dot, const float* rsq, int64_t n, float* val, float* group_min) {
  gemm_partial_impl(dot, rsq, n, val, group_min);
}
RTOOL_SIMD_CLONES void gemm_partial(const double* dot, const double* rsq, int64_t n, double* val, double* group_min) {
  gemm_partial_impl(dot, rsq, n, val, group_min);
}

template <typename scalar_t>
double exact_squared_distance(const scalar_t* q, const scalar_t* r, int64_t dim) {
  double sum = 0.0;
  for (int64_t d = 0; d < dim; ++d) {
    const double diff = static_cast<double>(q[d]) - static_cast<double>(r[d]);
    sum += diff * diff;
  }
  return sum;
}

template <typename scalar_t>
struct Kernel {
  const KnnProblem& p;
  int64_t dim, num_classes, k;
  const int64_t* off;
  const int64_t* skip;
  const scalar_t* queries;
  const scalar_t* refs;
  double* out_dist;
  int64_t* out_index;
  at::Tensor mean;      // [D]: every approximate distance is computed on data centred on the reference mean
  at::Tensor centred;   // fused: [D, N] centred refs, transposed; BLAS: [N, D] centred refs
  const scalar_t* rsq;  // [N] squared norms of the centred refs
  const scalar_t* ref_data;
  bool fused;
  double slack;         // |approx - exact| <= slack * (|q| + |r|)^2, centring and norm round-off included

  // Exact re-rank of one query's candidates in class c, written to the outputs.
  void finish(RowState<scalar_t>& s, int64_t q, int64_t c, std::vector<std::pair<double, int64_t>>& exact) const {
    s.prune(s.threshold(k));
    exact.clear();
    const scalar_t* qrow = queries + q * dim;
    for (const auto& cand : s.candidates) {
      exact.emplace_back(exact_squared_distance(qrow, refs + cand.second * dim, dim), cand.second);
    }
    const int64_t found = std::min<int64_t>(k, static_cast<int64_t>(exact.size()));
    std::partial_sort(exact.begin(), exact.begin() + found, exact.end());
    double* dist = out_dist + (q * num_classes + c) * k;
    int64_t* index = out_index + (q * num_classes + c) * k;
    for (int64_t t = 0; t < k; ++t) {
      dist[t] = t < found ? std::sqrt(exact[t].first) : kInf;
      index[t] = t < found ? exact[t].second : -1;
    }
  }

  double max_norm(int64_t r0, int64_t rn) const {
    scalar_t top = 0;
    for (int64_t j = 0; j < rn; ++j) top = std::max(top, rsq[r0 + j]);
    return std::sqrt(static_cast<double>(top));
  }

  void run_block(int64_t q0, int64_t qn) const {
    const at::Tensor qblock = (p.queries.narrow(0, q0, qn) - mean).contiguous();
    const at::Tensor qsq_t = qblock.square().sum(1, false, at::kDouble).contiguous();
    const double* qsq = qsq_t.const_data_ptr<double>();
    const scalar_t* qc = qblock.const_data_ptr<scalar_t>();
    const int64_t num_refs = p.refs.size(0);
    std::vector<RowState<scalar_t>> states(qn);
    const int64_t widest = std::max(kFusedTile, p.chunk);
    std::vector<scalar_t> val(Groups::of(widest).padded() + Groups::of(widest).count);
    std::vector<scalar_t> group_min(Groups::of(widest).count);
    std::vector<std::pair<double, int64_t>> exact;
    for (int64_t c = 0; c < num_classes; ++c) {
      for (auto& s : states) s.reset();
      const int64_t step = fused ? kFusedTile : p.chunk;
      for (int64_t r0 = off[c]; r0 < off[c + 1]; r0 += step) {
        const int64_t rn = std::min(step, off[c + 1] - r0);
        const double rnorm = max_norm(r0, rn);
        const Groups groups = Groups::of(rn);
        if (fused) {
          for (int64_t i = 0; i < qn; ++i) {
            const double reach = std::sqrt(qsq[i]) + rnorm;
            fused_partial(qc + i * dim, ref_data + r0, rsq + r0, dim, num_refs, rn, val.data(), group_min.data());
            states[i].offer(val.data(), group_min.data(), groups, rn, r0, qsq[i], slack * reach * reach, k,
                            skip[q0 + i]);
          }
        } else {
          const at::Tensor dots = at::mm(qblock, centred.narrow(0, r0, rn).t()).contiguous();  // [qn, rn]
          const scalar_t* dot = dots.const_data_ptr<scalar_t>();
          for (int64_t i = 0; i < qn; ++i) {
            const double reach = std::sqrt(qsq[i]) + rnorm;
            gemm_partial(dot + i * rn, rsq + r0, rn, val.data(), group_min.data());
            states[i].offer(val.data(), group_min.data(), groups, rn, r0, qsq[i], slack * reach * reach, k,
                            skip[q0 + i]);
          }
        }
      }
      for (int64_t i = 0; i < qn; ++i) finish(states[i], q0 + i, c, exact);
    }
  }
};

template <typename scalar_t>
void run_kernel(KnnProblem& p) {
  const int64_t num_queries = p.queries.size(0), num_refs = p.refs.size(0), dim = p.queries.size(1);
  const int64_t num_classes = p.offsets.numel() - 1;
  if (num_queries == 0 || num_classes == 0) return;
  // Distances do not change under a shift: centring on the reference mean keeps the norms, and with them
  // the GEMM form's rounding error, small. Plain loops (one pass each, no ATen parallel regions before the
  // one below: on a busy machine every region costs a thread wake-up).
  const bool fused = dim <= kFusedMaxDim;
  const scalar_t* refs = p.refs.const_data_ptr<scalar_t>();
  std::vector<double> mean64(dim, 0.0);
  for (int64_t r = 0; r < num_refs; ++r)
    for (int64_t d = 0; d < dim; ++d) mean64[d] += static_cast<double>(refs[r * dim + d]);
  at::Tensor mean = at::empty({dim}, p.refs.options());
  scalar_t* mean_data = mean.mutable_data_ptr<scalar_t>();
  for (int64_t d = 0; d < dim; ++d) mean_data[d] = static_cast<scalar_t>(num_refs > 0 ? mean64[d] / num_refs : 0.0);
  // fused: transposed [D, N]; BLAS: [N, D].
  at::Tensor centred =
      fused ? at::empty({dim, num_refs}, p.refs.options()) : at::empty({num_refs, dim}, p.refs.options());
  at::Tensor rsq = at::empty({num_refs}, p.refs.options());
  scalar_t* c_data = centred.mutable_data_ptr<scalar_t>();
  scalar_t* rsq_data = rsq.mutable_data_ptr<scalar_t>();
  for (int64_t r = 0; r < num_refs; ++r) {
    double norm = 0.0;
    for (int64_t d = 0; d < dim; ++d) {
      const scalar_t v = refs[r * dim + d] - mean_data[d];
      norm += static_cast<double>(v) * static_cast<double>(v);
      c_data[fused ? d * num_refs + r : r * dim + d] = v;
    }
    rsq_data[r] = static_cast<scalar_t>(norm);
  }
  const double unit = std::numeric_limits<scalar_t>::epsilon() / 2;
  const Kernel<scalar_t> kernel{p,
                                dim,
                                num_classes,
                                p.k,
                                p.offsets.const_data_ptr<int64_t>(),
                                p.self_index.const_data_ptr<int64_t>(),
                                p.queries.const_data_ptr<scalar_t>(),
                                p.refs.const_data_ptr<scalar_t>(),
                                p.distances.mutable_data_ptr<double>(),
                                p.indices.mutable_data_ptr<int64_t>(),
                                mean,
                                centred,
                                rsq.const_data_ptr<scalar_t>(),
                                centred.const_data_ptr<scalar_t>(),
                                fused,
                                2.0 * static_cast<double>(dim + 16) * unit};
  // Blocks are handed out one at a time from a shared counter, so a thread that the OS deschedules (a busy
  // machine) does not hold back the others; blocks stay large enough for an efficient GEMM and for each
  // reference tile to serve many queries while it is in cache.
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t wanted = kMaxQueryBlock / 2;
  const int64_t block = std::clamp<int64_t>(std::min(wanted, (num_queries + 4 * threads - 1) / (4 * threads)),
                                            kMinQueryBlock, kMaxQueryBlock);
  const int64_t num_blocks = (num_queries + block - 1) / block;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min(threads, num_blocks), 1, [&](int64_t begin, int64_t end) {
    for (int64_t worker = begin; worker < end; ++worker) {
      for (int64_t b = next.fetch_add(1); b < num_blocks; b = next.fetch_add(1)) {
        const int64_t q0 = b * block;
        kernel.run_block(q0, std::min(block, num_queries - q0));
      }
    }
  });
}

}  // namespace

void dsa_knn_cpu_kernel(KnnProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.queries.scalar_type(), "dsa_knn_cpu", [&] { run_kernel<scalar_t>(problem); });
}

}  // namespace rtool::dsa
