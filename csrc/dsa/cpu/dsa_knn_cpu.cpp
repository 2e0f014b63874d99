// CPU kernel for dsa_knn.
//
// Queries are taken in blocks (one task per block, handed out from a shared counter: no synchronisation inside a
// call). Per block and class, the class's reference rows are visited in chunks. For a whole chunk, the GEMM form
// ||q||^2 + ||r||^2 - 2 q.r of centred data, in the input precision, gives approximate squared distances (a
// register-blocked loop over a transposed copy for narrow traces, where a GEMM with a tiny inner size is
// write-bound; at::mm for wide ones), and the minimum of every group of one vector's width of rows. Per query, the
// first chunk of a class gives a cheap bound on the k-th smallest distance: the k smallest group minima are the
// values of k distinct rows, so the k-th smallest value cannot exceed the k-th smallest minimum; afterwards the
// k-th smallest candidate bounds it. Only the groups whose minimum passes the bound are scanned for candidates.
// Every bound is widened by the rounding error of the GEMM form, and
// at the class end the candidates are re-ranked by their exact float64 distance (ties: lowest row), so the result
// is exact. Working memory: one centred copy of refs plus O(block * chunk) per thread.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "../dsa.h"
#include "dsa_knn_avx512.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // 64-byte vector helpers are always inlined: no ABI crosses a call

namespace rtool::dsa {
namespace {

constexpr int64_t kFusedMaxDim = 32;   // narrower traces skip BLAS
static_assert(kFusedMaxDim <= avx512::kMaxDim, "the AVX-512 scan must cover every narrow trace");
constexpr int64_t kFusedChunk = 2048;  // narrow traces: reference rows per chunk (a block's values stay in L2)
constexpr int64_t kFusedBlock = 32;    // narrow traces: queries per task (each chunk is read once per block)
constexpr int64_t kWideBlock = 128;    // wide traces: queries per task (rows of each at::mm)
constexpr int64_t kQueryGroup = 4;     // queries that share each reference load in the register-blocked loop
constexpr double kInf = std::numeric_limits<double>::infinity();

// The hot loops are compiled for x86-64-v4 (AVX-512), v3 (AVX2, FMA) and the baseline; the loader picks one.
#define RTOOL_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

// 64-byte vectors (GCC/Clang vector extensions): lowered to whatever the clone's target has.
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(64)));
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(64)));
};

template <typename T>
__attribute__((always_inline)) inline typename Simd<T>::V load(const T* p) {
  typename Simd<T>::V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
__attribute__((always_inline)) inline void store(T* p, typename Simd<T>::V v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// The smallest lane (NaN lanes count as +inf), by halving: log2(lanes) shuffles and minima.
__attribute__((always_inline)) inline float lane_min(Simd<float>::V v) {
  using V = Simd<float>::V;
  v = v == v ? v : std::numeric_limits<float>::infinity();
  V w = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
  v = w < v ? w : v;
  w = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
  v = w < v ? w : v;
  w = __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  v = w < v ? w : v;
  w = __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
  v = w < v ? w : v;
  return v[0];
}
__attribute__((always_inline)) inline double lane_min(Simd<double>::V v) {
  using V = Simd<double>::V;
  v = v == v ? v : std::numeric_limits<double>::infinity();
  V w = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
  v = w < v ? w : v;
  w = __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
  v = w < v ? w : v;
  w = __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
  v = w < v ? w : v;
  return v[0];
}

// Group g of a chunk = its rows [g * L, (g + 1) * L), L = one vector's width: the rows tested together.
template <typename T>
constexpr int64_t kGroup = sizeof(typename Simd<T>::V) / sizeof(T);

// Minima of the groups from the one holding row j0 on, over rows [g * L, n) (+inf where all are NaN).
template <typename T>
__attribute__((always_inline)) inline void tail_minima(const T* val, int64_t j0, int64_t n, T* group_min) {
  constexpr int64_t L = kGroup<T>;
  for (int64_t g = j0 / L; g * L < n; ++g) {
    T m = std::numeric_limits<T>::infinity();
    for (int64_t j = g * L; j < std::min(n, (g + 1) * L); ++j) m = val[j] < m ? val[j] : m;
    group_min[g] = m;
  }
}

// val[i * ldv + j] = rsq[j] - 2 sum_d q[i * dim + d] rt[d * stride + j] for i < kQueryGroup, j < n (rt: the
// transposed centred refs, from the chunk's first row), and group_min[i * ldg + g] the minimum of group g of
// row i. Each reference load serves kQueryGroup queries.
template <typename T>
__attribute__((always_inline)) inline void partial_values_impl(const T* q, const T* rt, const T* rsq, int64_t dim,
                                                               int64_t stride, int64_t n, T* val, int64_t ldv,
                                                               T* group_min, int64_t ldg) {
  using V = typename Simd<T>::V;
  constexpr int64_t L = kGroup<T>;
  int64_t j0 = 0;
  for (; j0 + 2 * L <= n; j0 += 2 * L) {
    V acc[kQueryGroup][2] = {};
    for (int64_t d = 0; d < dim; ++d) {
      const V r0 = load(rt + d * stride + j0), r1 = load(rt + d * stride + j0 + L);
      for (int64_t i = 0; i < kQueryGroup; ++i) {
        const T qd = q[i * dim + d];
        acc[i][0] += qd * r0;
        acc[i][1] += qd * r1;
      }
    }
    const V s0 = load(rsq + j0), s1 = load(rsq + j0 + L);
    for (int64_t i = 0; i < kQueryGroup; ++i) {
      const V v0 = s0 - T(2) * acc[i][0], v1 = s1 - T(2) * acc[i][1];
      store(val + i * ldv + j0, v0);
      store(val + i * ldv + j0 + L, v1);
      group_min[i * ldg + j0 / L] = lane_min(v0);
      group_min[i * ldg + j0 / L + 1] = lane_min(v1);
    }
  }
  for (int64_t i = 0; i < kQueryGroup; ++i) {
    for (int64_t j = j0; j < n; ++j) {
      T acc = 0;
      for (int64_t d = 0; d < dim; ++d) acc += q[i * dim + d] * rt[d * stride + j];
      val[i * ldv + j] = rsq[j] - 2 * acc;
    }
    tail_minima(val + i * ldv, j0, n, group_min + i * ldg);
  }
}
RTOOL_SIMD_CLONES void partial_values(const float* q, const float* rt, const float* rsq, int64_t dim,
                                      int64_t stride, int64_t n, float* val, int64_t ldv, float* group_min,
                                      int64_t ldg) {
  partial_values_impl(q, rt, rsq, dim, stride, n, val, ldv, group_min, ldg);
}
RTOOL_SIMD_CLONES void partial_values(const double* q, const double* rt, const double* rsq, int64_t dim,
                                      int64_t stride, int64_t n, double* val, int64_t ldv, double* group_min,
                                      int64_t ldg) {
  partial_values_impl(q, rt, rsq, dim, stride, n, val, ldv, group_min, ldg);
}

// val[j] = rsq[j] - 2 dot[j], j < n, and the group minima.
template <typename T>
__attribute__((always_inline)) inline void values_from_dots_impl(const T* dot, const T* rsq, int64_t n, T* val,
                                                                 T* group_min) {
  using V = typename Simd<T>::V;
  constexpr int64_t L = kGroup<T>;
  int64_t j0 = 0;
  for (; j0 + L <= n; j0 += L) {
    const V v = load(rsq + j0) - T(2) * load(dot + j0);
    store(val + j0, v);
    group_min[j0 / L] = lane_min(v);
  }
  for (int64_t j = j0; j < n; ++j) val[j] = rsq[j] - 2 * dot[j];
  tail_minima(val, j0, n, group_min);
}
RTOOL_SIMD_CLONES void values_from_dots(const float* dot, const float* rsq, int64_t n, float* val,
                                        float* group_min) {
  values_from_dots_impl(dot, rsq, n, val, group_min);
}
RTOOL_SIMD_CLONES void values_from_dots(const double* dot, const double* rsq, int64_t n, double* val,
                                        double* group_min) {
  values_from_dots_impl(dot, rsq, n, val, group_min);
}

// The skipped row leaves its group: its value becomes +inf and the group's minimum is taken again.
template <typename T>
void leave_out(T* val, T* group_min, int64_t n, int64_t j) {
  constexpr int64_t L = kGroup<T>;
  val[j] = std::numeric_limits<T>::infinity();
  const int64_t g = j / L;
  T m = std::numeric_limits<T>::infinity();
  for (int64_t t = g * L; t < std::min(n, (g + 1) * L); ++t) m = val[t] < m ? val[t] : m;
  group_min[g] = m;
}

// The candidates of one query within one class.
template <typename T>
struct Selection {
  std::vector<std::pair<double, int64_t>> candidates;  // (lower bound of the squared distance, row)
  double upper = kInf;                                 // bounds the k-th smallest squared distance seen
  std::vector<T> scratch;

  void reset() {
    candidates.clear();
    upper = kInf;
  }

  // Offers the chunk of n rows from `first`: the squared distance of row first + j is within `bound` of
  // qsq + val[j]; group_min[g] is the minimum of val over group g (the skipped row already left out).
  void offer(const T* val, const T* group_min, int64_t n, int64_t first, double qsq, double bound, int64_t k,
             int64_t skip_row) {
    constexpr int64_t L = kGroup<T>;
    const int64_t num_groups = (n + L - 1) / L;
    if (upper == kInf && num_groups >= k) {
      scratch.assign(group_min, group_min + num_groups);
      std::nth_element(scratch.begin(), scratch.begin() + (k - 1), scratch.end());
      const T kth = scratch[k - 1];
      if (kth <= std::numeric_limits<T>::max()) upper = qsq + static_cast<double>(kth) + bound;
    }
    const T cut = cut_for(upper, qsq, bound);
    for (int64_t g = 0; g < num_groups; ++g) {
      if (!(group_min[g] <= cut)) continue;
      for (int64_t j = g * L; j < std::min(n, (g + 1) * L); ++j) {
        if (val[j] <= cut && first + j != skip_row)
          candidates.emplace_back(qsq + static_cast<double>(val[j]) - bound, first + j);
      }
    }
    tighten(k, bound);
  }

  // The k-th smallest upper bound among the candidates bounds the k-th distance too; drop what cannot beat it.
  void tighten(int64_t k, double bound) {
    if (static_cast<int64_t>(candidates.size()) < k) return;
    std::nth_element(candidates.begin(), candidates.begin() + (k - 1), candidates.end());
    upper = std::min(upper, candidates[k - 1].first + 2.0 * bound);
    const double limit = upper;
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [limit](const auto& c) { return c.first > limit; }),
                     candidates.end());
  }

  // val[j] <= limit - qsq + bound is necessary for row j to be a candidate; that limit rounded up.
  static T cut_for(double limit, double qsq, double bound) {
    if (limit == kInf) return std::numeric_limits<T>::infinity();
    return std::nextafter(static_cast<T>(limit - qsq + bound), std::numeric_limits<T>::infinity());
  }
};

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
  int64_t chunk;        // reference rows per chunk
  double slack;         // |approx - exact| <= slack * (|q| + |r|)^2, centring and norm round-off included

  void write_empty(int64_t q, int64_t c) const {
    std::fill_n(out_dist + (q * num_classes + c) * k, k, kInf);
    std::fill_n(out_index + (q * num_classes + c) * k, k, int64_t{-1});
  }

  // Exact re-rank of one query's candidates in class c, written to the outputs.
  void finish(const Selection<scalar_t>& s, int64_t q, int64_t c,
              std::vector<std::pair<double, int64_t>>& exact) const {
    exact.clear();
    const scalar_t* qrow = queries + q * dim;
    for (const auto& cand : s.candidates) {
      if (cand.first > s.upper) continue;
      const double d = exact_squared_distance(qrow, refs + cand.second * dim, dim);
      if (std::isfinite(d)) exact.emplace_back(d, cand.second);
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

  // Values of the chunk [r0, r0 + rn) for the block's queries, vals[i * chunk + j], and their group minima,
  // group_min[i * ldg + g], i < qn.
  void chunk_values(const at::Tensor& qblock, const scalar_t* qpadded, int64_t qn, int64_t r0, int64_t rn,
                    scalar_t* vals, scalar_t* group_min, int64_t ldg) const {
    if (fused) {
      const int64_t num_refs = p.refs.size(0);
      for (int64_t i = 0; i < qn; i += kQueryGroup)
        partial_values(qpadded + i * dim, ref_data + r0, rsq + r0, dim, num_refs, rn, vals + i * chunk, chunk,
                       group_min + i * ldg, ldg);
      return;
    }
    const at::Tensor dots = at::mm(qblock, centred.narrow(0, r0, rn).t()).contiguous();  // [qn, rn]
    const scalar_t* dot = dots.const_data_ptr<scalar_t>();
    for (int64_t i = 0; i < qn; ++i)
      values_from_dots(dot + i * rn, rsq + r0, rn, vals + i * chunk, group_min + i * ldg);
  }

  void run_block(int64_t q0, int64_t qn) const {
    const at::Tensor qblock = (p.queries.narrow(0, q0, qn) - mean).contiguous();
    const at::Tensor qsq_t = qblock.square().sum(1, false, at::kDouble).contiguous();
    const double* qsq = qsq_t.const_data_ptr<double>();
    // The register-blocked loop takes queries kQueryGroup at a time: pad the block with zero rows.
    const int64_t padded = (qn + kQueryGroup - 1) / kQueryGroup * kQueryGroup;
    std::vector<scalar_t> qpadded(fused ? padded * dim : 0, scalar_t(0));
    if (fused) std::copy_n(qblock.const_data_ptr<scalar_t>(), qn * dim, qpadded.data());
    std::vector<scalar_t> vals(padded * chunk);
    const int64_t ldg = (chunk + kGroup<scalar_t> - 1) / kGroup<scalar_t>;
    std::vector<scalar_t> group_min(padded * ldg);
    std::vector<Selection<scalar_t>> selections(qn);
    std::vector<std::pair<double, int64_t>> exact;
    for (int64_t c = 0; c < num_classes; ++c) {
      for (auto& s : selections) s.reset();
      for (int64_t r0 = off[c]; r0 < off[c + 1]; r0 += chunk) {
        const int64_t rn = std::min(chunk, off[c + 1] - r0);
        const double rnorm = max_norm(r0, rn);
        chunk_values(qblock, qpadded.data(), qn, r0, rn, vals.data(), group_min.data(), ldg);
        for (int64_t i = 0; i < qn; ++i) {
          if (!std::isfinite(qsq[i])) continue;
          scalar_t* val = vals.data() + i * chunk;
          scalar_t* minima = group_min.data() + i * ldg;
          const int64_t skip_row = skip[q0 + i];
          if (skip_row >= r0 && skip_row < r0 + rn) leave_out(val, minima, rn, skip_row - r0);
          const double reach = std::sqrt(qsq[i]) + rnorm;
          selections[i].offer(val, minima, rn, r0, qsq[i], slack * reach * reach, k, skip_row);
        }
      }
      for (int64_t i = 0; i < qn; ++i) {
        if (std::isfinite(qsq[i])) {
          finish(selections[i], q0 + i, c, exact);
        } else {
          write_empty(q0 + i, c);  // a query with a NaN or infinite feature has no finite distance
        }
      }
    }
  }
};

// Calls body(begin, end) for blocks [0, count) of `block` items handed out one at a time from a shared counter, so
// a thread that the OS deschedules (a busy machine) does not hold back the others.
template <typename Body>
void for_each_block(int64_t count, int64_t block, const Body& body) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t num_blocks = (count + block - 1) / block;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min(threads, num_blocks), 1, [&](int64_t begin, int64_t end) {
    for (int64_t worker = begin; worker < end; ++worker) {
      for (int64_t b = next.fetch_add(1); b < num_blocks; b = next.fetch_add(1)) {
        const int64_t q0 = b * block;
        body(q0, std::min(block, count - q0));
      }
    }
  });
}

// The narrow-trace search on AVX-512: one pass over each class per block of queries (dsa_knn_avx512.cpp).
template <typename scalar_t>
void run_avx512_scan(KnnProblem& p, const at::Tensor& mean, const at::Tensor& centred_t, const at::Tensor& rsq,
                     double slack) {
  const int64_t num_classes = p.offsets.numel() - 1;
  const int64_t* off = p.offsets.const_data_ptr<int64_t>();
  const scalar_t* rsq_data = rsq.const_data_ptr<scalar_t>();
  std::vector<double> reach(num_classes, 0.0);
  for (int64_t c = 0; c < num_classes; ++c) {
    for (int64_t r = off[c]; r < off[c + 1]; ++r) {
      const double sq = static_cast<double>(rsq_data[r]);
      if (std::isfinite(sq)) reach[c] = std::max(reach[c], std::sqrt(sq));
    }
  }
  const avx512::NarrowScan<scalar_t> scan{p.queries.size(1),
                                          p.refs.size(0),
                                          num_classes,
                                          p.k,
                                          off,
                                          p.self_index.const_data_ptr<int64_t>(),
                                          p.queries.const_data_ptr<scalar_t>(),
                                          p.refs.const_data_ptr<scalar_t>(),
                                          mean.const_data_ptr<scalar_t>(),
                                          centred_t.const_data_ptr<scalar_t>(),
                                          rsq_data,
                                          reach.data(),
                                          slack,
                                          p.distances.mutable_data_ptr<double>(),
                                          p.indices.mutable_data_ptr<int64_t>()};
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t queries = p.queries.size(0);
  const int64_t block = std::clamp<int64_t>((queries + 4 * threads - 1) / (4 * threads), 4, avx512::kBlock);
  for_each_block(queries, block, [&](int64_t q0, int64_t qn) { avx512::scan_block(scan, q0, qn); });
}

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
  // The mean of the finite rows: a row with a NaN or infinite feature is never found, and must not move the others.
  std::vector<double> mean64(dim, 0.0);
  int64_t finite_rows = 0;
  for (int64_t r = 0; r < num_refs; ++r) {
    bool finite = true;
    for (int64_t d = 0; d < dim; ++d) finite = finite && std::isfinite(static_cast<double>(refs[r * dim + d]));
    if (!finite) continue;
    ++finite_rows;
    for (int64_t d = 0; d < dim; ++d) mean64[d] += static_cast<double>(refs[r * dim + d]);
  }
  at::Tensor mean = at::empty({dim}, p.refs.options());
  scalar_t* mean_data = mean.mutable_data_ptr<scalar_t>();
  for (int64_t d = 0; d < dim; ++d)
    mean_data[d] = static_cast<scalar_t>(finite_rows > 0 ? mean64[d] / finite_rows : 0.0);
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
                                fused ? kFusedChunk : p.chunk,
                                2.0 * static_cast<double>(dim + 16) * unit};
  // The scan keeps candidate rows as 32-bit offsets into their class.
  if (fused && num_refs <= std::numeric_limits<int32_t>::max() && avx512::usable()) {
    run_avx512_scan<scalar_t>(p, mean, centred, rsq, kernel.slack);
    return;
  }
  // At least four blocks per thread where the queries allow.
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  const int64_t most = fused ? kFusedBlock : kWideBlock;
  int64_t block = std::clamp<int64_t>((num_queries + 4 * threads - 1) / (4 * threads), kQueryGroup, most);
  if (fused) block = (block + kQueryGroup - 1) / kQueryGroup * kQueryGroup;
  for_each_block(num_queries, block, [&](int64_t q0, int64_t qn) { kernel.run_block(q0, qn); });
}

}  // namespace

void dsa_knn_cpu_kernel(KnnProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.queries.scalar_type(), "dsa_knn_cpu", [&] { run_kernel<scalar_t>(problem); });
}

}  // namespace rtool::dsa
