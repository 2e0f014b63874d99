// The AVX-512 scan of dsa_knn for narrow traces (dim <= 32).
//
// Per block of up to 32 queries and per class, the class's rows are visited once, one tile of a vector's width
// of rows at a time: the tile's features stay in registers while every query of the block computes its
// approximate squared distances to the tile (the GEMM form ||r||^2 - 2 q.r on centred data, ||q||^2 left out)
// and compares them with its own cut. No distance is stored for later: a tile's values are kept (as an event)
// only for the queries where some row passed, and those rows become candidates after the tile. A query's cut
// starts above every finite value; once it holds k candidates, and every 2k candidates after that, the cut falls
// to a value just above the k-th smallest candidate (found by counting, not by a selection that branches on the
// data), widened by twice the GEMM form's rounding bound, and the candidates above it are dropped (after k of n
// rows in random order, about k ln(n / k) more rows pass). At the class end the candidates under the final cut
// are re-ranked by their exact float64 distance (ties: lowest row): a row of the true k nearest always passes
// the cut in force when it is visited, so the result is exact.
#include "dsa_knn_avx512.h"

// GCC 12 flags the _mm512_undefined_* inside its own AVX-512 headers as maybe-uninitialized (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>
#include <vector>

// The scan is written for GCC on x86-64 (function-level target pragmas); elsewhere the portable kernel runs.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RTOOL_DSA_AVX512 1
#include <immintrin.h>
#endif

namespace rtool::dsa::avx512 {

#ifndef RTOOL_DSA_AVX512

bool usable() { return false; }

template <typename T>
void scan_block(const NarrowScan<T>&, int64_t, int64_t) {}

#else

bool usable() {
  const char* off = std::getenv("RTOOL_DSA_PORTABLE");
  if (off != nullptr && off[0] != '\0') return false;
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

namespace {

// One query's candidates within the class being scanned: values (approximate squared distance minus ||q||^2)
// and rows (from the class's first row) in two arrays, written by compress stores.
template <typename T>
struct QueryState {
  std::vector<T> values;
  std::vector<int32_t> rows;
  int64_t count = 0;
  int64_t trigger = 0;   // tighten once this many candidates are held
  double widen = 0.0;    // twice the rounding bound of this query's values in this class
  int64_t skip = -1;     // the row to leave out (from the class's first row), or -1
  bool active = false;   // false for padding and for a query with a non-finite feature

  // Room for `more` further candidates.
  void reserve(int64_t more) {
    if (count + more <= static_cast<int64_t>(values.size())) return;
    const size_t size = std::max<size_t>(2 * values.size(), static_cast<size_t>(count + more));
    values.resize(size);
    rows.resize(size);
  }
};

template <typename T>
T round_up(double x) {
  return std::nextafter(static_cast<T>(x), std::numeric_limits<T>::infinity());
}

// Rows of one tile that passed a query's cut (bit b: row first + b).
template <typename T>
struct Event {
  alignas(64) T values[64 / sizeof(T)];
  int64_t query;
  uint32_t mask;
};

}  // namespace

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512bw,avx512vl,fma,bmi,bmi2")

namespace {

template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static M le(M valid, V a, V b) { return _mm512_mask_cmp_ps_mask(valid, a, b, _CMP_LE_OQ); }
  static void store(float* p, V v) { _mm512_store_ps(p, v); }
  static V load_aligned(const float* p) { return _mm512_load_ps(p); }
  static V set_min(V a, M m, V b) { return _mm512_mask_min_ps(a, m, a, b); }
  static V mask_add(V a, M m, V b) { return _mm512_mask_add_ps(a, m, a, b); }
  static M ge(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static V iota_from_one() { return _mm512_setr_ps(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16); }
  static V blend_last(V a, float x) { return _mm512_mask_mov_ps(a, M(1u << 15), _mm512_set1_ps(x)); }
  static V set_max(V a, M m, V b) { return _mm512_mask_max_ps(a, m, a, b); }
  // (GCC 12's _mm512_reduce_min_ps trips -Wmaybe-uninitialized, hence the hand-written halvings)
  static float min_of(V v) {
    v = _mm512_min_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_min_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_min_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_cvtss_f32(_mm512_min_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1))));
  }
  static float max_of(V v) {
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm512_cvtss_f32(_mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1))));
  }
  // The compress functions pack the lanes under m to p and write a whole vector there (p needs L slots of room):
  // a compress into a register and a plain store, where a compress straight to memory is slow on Intel cores.
  static void compress(float* p, M m, V v) { _mm512_storeu_ps(p, _mm512_maskz_compress_ps(m, v)); }
  // rows first, first + 1, ... where m is set
  static void compress_rows(int32_t* p, M m, int32_t first) {
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    _mm512_storeu_si512(p, _mm512_maskz_compress_epi32(m, _mm512_add_epi32(_mm512_set1_epi32(first), iota)));
  }
  // the rows of src[0, L) where m is set (m within valid)
  static void compress_rows_from(int32_t* p, M m, M valid, const int32_t* src) {
    _mm512_storeu_si512(p, _mm512_maskz_compress_epi32(m, _mm512_maskz_loadu_epi32(valid, src)));
  }
};
template <>
struct Lanes<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static V load(M m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static M le(M valid, V a, V b) { return _mm512_mask_cmp_pd_mask(valid, a, b, _CMP_LE_OQ); }
  static void store(double* p, V v) { _mm512_store_pd(p, v); }
  static V load_aligned(const double* p) { return _mm512_load_pd(p); }
  static V set_min(V a, M m, V b) { return _mm512_mask_min_pd(a, m, a, b); }
  static V mask_add(V a, M m, V b) { return _mm512_mask_add_pd(a, m, a, b); }
  static M ge(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_GE_OQ); }
  static V iota_from_one() { return _mm512_setr_pd(1, 2, 3, 4, 5, 6, 7, 8); }
  static V blend_last(V a, double x) { return _mm512_mask_mov_pd(a, M(1u << 7), _mm512_set1_pd(x)); }
  static V set_max(V a, M m, V b) { return _mm512_mask_max_pd(a, m, a, b); }
  static double min_of(V v) {
    v = _mm512_min_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_min_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtsd_f64(_mm512_min_pd(v, _mm512_permute_pd(v, 0x55)));
  }
  static double max_of(V v) {
    v = _mm512_max_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_max_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtsd_f64(_mm512_max_pd(v, _mm512_permute_pd(v, 0x55)));
  }
  static void compress(double* p, M m, V v) { _mm512_storeu_pd(p, _mm512_maskz_compress_pd(m, v)); }
  static void compress_rows(int32_t* p, M m, int32_t first) {
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm256_maskz_compress_epi32(m, _mm256_add_epi32(_mm256_set1_epi32(first), iota)));
  }
  static void compress_rows_from(int32_t* p, M m, M valid, const int32_t* src) {
    const __m256i rows = _mm256_maskz_loadu_epi32(valid, src);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_maskz_compress_epi32(m, rows));
  }
};

template <typename T>
typename Lanes<T>::M lane_mask(int64_t left) {
  using M = typename Lanes<T>::M;
  return left >= Lanes<T>::L ? static_cast<M>(~M(0)) : static_cast<M>((uint32_t{1} << left) - 1);
}

// How many of the query's candidates have a value <= t.
template <typename T>
int64_t count_at_most(const QueryState<T>& s, T t) {
  using S = Lanes<T>;
  const typename S::V limit = S::set1(t);
  int64_t n = 0;
  for (int64_t i = 0; i < s.count; i += S::L) {
    const typename S::M valid = lane_mask<T>(s.count - i);
    n += __builtin_popcount(S::le(valid, S::load(valid, s.values.data() + i), limit));
  }
  return n;
}

// A value t with at least k candidates at or below it, close above the k-th smallest. The candidates' range is
// cut into L equal parts and one pass counts the candidates under all L thresholds at once (one vector compare
// per candidate); the part holding the k-th is cut again, twice in all (three times for float64's 8 lanes).
template <typename T>
T kth_upper_bound(const QueryState<T>& s, int64_t k) {
  using S = Lanes<T>;
  using V = typename S::V;
  using M = typename S::M;
  constexpr int L = S::L;
  V low = S::set1(std::numeric_limits<T>::infinity());
  V high = S::set1(-std::numeric_limits<T>::infinity());
  for (int64_t i = 0; i < s.count; i += L) {
    const M valid = lane_mask<T>(s.count - i);
    const V v = S::load(valid, s.values.data() + i);
    low = S::set_min(low, valid, v);
    high = S::set_max(high, valid, v);
  }
  T lo = S::min_of(low), hi = S::max_of(high);  // count(<= hi) = all >= k
  if (count_at_most(s, lo) >= k) return lo;      // invariant from here: count(<= lo) < k <= count(<= hi)
  const V parts = S::iota_from_one();
  const V one = S::set1(T(1));
  alignas(64) T thresholds[L];
  for (int round = 0; round < (L == 16 ? 2 : 3); ++round) {
    if (!(hi > lo)) break;
    // thresholds lo + (hi - lo) j / L, j = 1..L, the last one exactly hi
    const V t = S::blend_last(S::fma(S::set1((hi - lo) / L), parts, S::set1(lo)), hi);
    V below0 = S::zero(), below1 = S::zero();  // per threshold: candidates at or under it (two chains)
    int64_t j = 0;
    for (; j + 1 < s.count; j += 2) {
      below0 = S::mask_add(below0, S::le(static_cast<M>(~M(0)), S::set1(s.values[j]), t), one);
      below1 = S::mask_add(below1, S::le(static_cast<M>(~M(0)), S::set1(s.values[j + 1]), t), one);
    }
    if (j < s.count) below0 = S::mask_add(below0, S::le(static_cast<M>(~M(0)), S::set1(s.values[j]), t), one);
    const M enough = S::ge(S::add(below0, below1), S::set1(static_cast<T>(k)));
    const int first = __builtin_ctz(static_cast<uint32_t>(enough));  // lane L - 1 always counts them all
    S::store(thresholds, t);
    if (first > 0) lo = thresholds[first - 1];
    hi = thresholds[first];
  }
  return hi;
}

// Lower the query's cut to a bound of its k-th smallest candidate (widened) and keep only the candidates under it.
template <typename T>
void tighten(QueryState<T>& s, T& cut, int64_t k) {
  using S = Lanes<T>;
  cut = std::min(cut, round_up<T>(static_cast<double>(kth_upper_bound(s, k)) + s.widen));
  const typename S::V limit = S::set1(cut);
  int64_t kept = 0;
  for (int64_t i = 0; i < s.count; i += S::L) {
    const typename S::M valid = lane_mask<T>(s.count - i);
    const typename S::V v = S::load(valid, s.values.data() + i);
    const typename S::M keep = S::le(valid, v, limit);
    S::compress_rows_from(s.rows.data() + kept, keep, valid, s.rows.data() + i);
    S::compress(s.values.data() + kept, keep, v);
    kept += __builtin_popcount(keep);
  }
  s.count = kept;
  s.trigger = kept + 2 * k;
}

// The passing rows of one tile (rows first, first + 1, ... of the class) become candidates.
template <typename T>
__attribute__((noinline)) void take_events(const Event<T>* events, int64_t count, int64_t first,
                                           QueryState<T>* states, T* cut, int64_t k) {
  using S = Lanes<T>;
  for (int64_t e = 0; e < count; ++e) {
    const Event<T>& ev = events[e];
    QueryState<T>& s = states[ev.query];
    typename S::M m = static_cast<typename S::M>(ev.mask);
    const int64_t at = s.skip - first;
    if (at >= 0 && at < S::L) m &= static_cast<typename S::M>(~(uint32_t{1} << at));
    if (m == 0) continue;
    s.reserve(2 * S::L);  // the push and a later compaction each write a whole vector past the count
    S::compress(s.values.data() + s.count, m, S::load_aligned(ev.values));
    S::compress_rows(s.rows.data() + s.count, m, static_cast<int32_t>(first));
    s.count += __builtin_popcount(m);
    if (s.count >= s.trigger) tighten(s, cut[ev.query], k);
  }
}

constexpr int kGroup = 4;  // queries computed together (independent FMA chains)

// Rows [lo, hi) of the transposed centred refs against the block's queries: q2 [qpad, D] holds -2 q, cut [qpad].
template <typename T, int D>
void scan_rows(const T* rt, int64_t stride, const T* rsq, int64_t lo, int64_t hi, const T* q2, int64_t qpad,
               T* cut, QueryState<T>* states, int64_t k, Event<T>* events) {
  using S = Lanes<T>;
  using V = typename S::V;
  using M = typename S::M;
  constexpr int L = S::L;
  for (int64_t j0 = lo; j0 < hi; j0 += L) {
    const M valid = lane_mask<T>(hi - j0);
    V r[D];
    for (int d = 0; d < D; ++d) r[d] = S::load(valid, rt + d * stride + j0);
    const V s = S::load(valid, rsq + j0);
    int64_t count = 0;
    for (int64_t i = 0; i < qpad; i += kGroup) {
      V a[kGroup], b[kGroup];
      for (int g = 0; g < kGroup; ++g) {
        a[g] = s;
        b[g] = S::zero();
      }
      const T* q = q2 + i * D;
      for (int d = 0; d < D; d += 2) {
        for (int g = 0; g < kGroup; ++g) a[g] = S::fma(S::set1(q[g * D + d]), r[d], a[g]);
        if (d + 1 < D)
          for (int g = 0; g < kGroup; ++g) b[g] = S::fma(S::set1(q[g * D + d + 1]), r[d + 1], b[g]);
      }
      // Every query's values are written to the next event slot, which is kept only where some row passed:
      // no branch on the data (a passing row is rare but not predictable).
      for (int g = 0; g < kGroup; ++g) {
        const V value = S::add(a[g], b[g]);
        const M pass = S::le(valid, value, S::set1(cut[i + g]));
        S::store(events[count].values, value);
        events[count].query = i + g;
        events[count].mask = pass;
        count += pass != 0;
      }
    }
    if (count > 0) take_events(events, count, j0 - lo, states, cut, k);
  }
}

// Eight features of a reference row (those under m), widened to float64.
inline __m512d features_f64(__mmask8 m, const float* r) { return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, r)); }
inline __m512d features_f64(__mmask8 m, const double* r) { return _mm512_maskz_loadu_pd(m, r); }

inline double sum_of(__m512d v) {
  v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtsd_f64(_mm512_add_pd(v, _mm512_permute_pd(v, 0x55)));
}

// The exact float64 squared distances of the query's candidates under its final cut, as (distance, row) pairs; q64 is
// the query in float64, rows are counted from `lo`. Non-finite distances are left out.
template <typename T>
void exact_candidates(QueryState<T>& s, T& cut, const double* q64, const T* refs, int64_t dim, int64_t lo,
                      int64_t k, std::vector<std::pair<double, int64_t>>& out) {
  out.clear();
  if (s.count > k) tighten(s, cut, k);
  for (int64_t j = 0; j < s.count; ++j) {
    if (!(s.values[j] <= cut)) continue;
    const int64_t row = lo + s.rows[j];
    const T* r = refs + row * dim;
    __m512d acc = _mm512_setzero_pd();
    for (int64_t d0 = 0; d0 < dim; d0 += 8) {
      const __mmask8 m = lane_mask<double>(dim - d0);
      const __m512d diff = _mm512_sub_pd(_mm512_maskz_loadu_pd(m, q64 + d0), features_f64(m, r + d0));
      acc = _mm512_fmadd_pd(diff, diff, acc);
    }
    const double d = sum_of(acc);
    if (std::isfinite(d)) out.emplace_back(d, row);
  }
}

template <typename T>
using ScanRows = void (*)(const T*, int64_t, const T*, int64_t, int64_t, const T*, int64_t, T*, QueryState<T>*,
                          int64_t, Event<T>*);

template <typename T, int... Ds>
constexpr std::array<ScanRows<T>, sizeof...(Ds)> scan_table(std::integer_sequence<int, Ds...>) {
  return {&scan_rows<T, Ds + 1>...};
}

}  // namespace

#pragma GCC pop_options

template <typename T>
void scan_block(const NarrowScan<T>& sc, int64_t q0, int64_t qn) {
  static constexpr auto table = scan_table<T>(std::make_integer_sequence<int, kMaxDim>{});
  const int64_t dim = sc.dim, k = sc.k;
  const ScanRows<T> scan = table[dim - 1];
  const int64_t qpad = (qn + kGroup - 1) / kGroup * kGroup;
  std::vector<T> q2(qpad * dim, T(0));
  std::vector<double> qnorm(qn), q64(qn * dim);
  std::vector<QueryState<T>> states(qpad);
  for (int64_t i = 0; i < qn; ++i) {
    double sq = 0.0;
    for (int64_t d = 0; d < dim; ++d) {
      q64[i * dim + d] = static_cast<double>(sc.queries[(q0 + i) * dim + d]);
      const T v = sc.queries[(q0 + i) * dim + d] - sc.mean[d];
      q2[i * dim + d] = T(-2) * v;
      sq += static_cast<double>(v) * static_cast<double>(v);
    }
    qnorm[i] = std::sqrt(sq);
    states[i].active = std::isfinite(sq);
  }
  std::vector<T> cut(qpad);
  std::vector<Event<T>> events(qpad + 1);  // one spare slot: scan_rows writes one past the last event
  std::vector<std::pair<double, int64_t>> exact;
  for (int64_t c = 0; c < sc.num_classes; ++c) {
    const int64_t lo = sc.offsets[c], hi = sc.offsets[c + 1];
    for (int64_t i = 0; i < qpad; ++i) {
      QueryState<T>& s = states[i];
      s.count = 0;
      s.trigger = k;
      const double reach = i < qn ? qnorm[i] + sc.class_reach[c] : 0.0;
      s.widen = 2.0 * sc.slack * reach * reach;
      const int64_t skip = i < qn ? sc.skip[q0 + i] : -1;
      s.skip = skip >= lo && skip < hi ? skip - lo : -1;
      cut[i] = s.active ? std::numeric_limits<T>::max() : -std::numeric_limits<T>::infinity();
    }
    if (hi > lo) scan(sc.centred_t, sc.num_refs, sc.rsq, lo, hi, q2.data(), qpad, cut.data(), states.data(), k,
                      events.data());
    for (int64_t i = 0; i < qn; ++i) {
      exact_candidates(states[i], cut[i], q64.data() + i * dim, sc.refs, dim, lo, k, exact);
      const int64_t found = std::min<int64_t>(k, static_cast<int64_t>(exact.size()));
      std::sort(exact.begin(), exact.end());  // a few more than k
      double* dist = sc.out_dist + ((q0 + i) * sc.num_classes + c) * k;
      int64_t* index = sc.out_index + ((q0 + i) * sc.num_classes + c) * k;
      for (int64_t t = 0; t < k; ++t) {
        dist[t] = t < found ? std::sqrt(exact[t].first) : std::numeric_limits<double>::infinity();
        index[t] = t < found ? exact[t].second : -1;
      }
    }
  }
}

#endif  // RTOOL_DSA_AVX512

template void scan_block<float>(const NarrowScan<float>&, int64_t, int64_t);
template void scan_block<double>(const NarrowScan<double>&, int64_t, int64_t);

}  // namespace rtool::dsa::avx512
