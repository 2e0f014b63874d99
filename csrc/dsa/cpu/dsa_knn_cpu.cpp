// CPU kernel for dsa_knn. Per block of queries and per class, the references are visited in chunks:
// one GEMM gives approximate squared distances ||q||^2 + ||r||^2 - 2 q.r of the centred data, a per-row
// scan keeps every reference that could still be among the k nearest given a rounding bound, and at the
// class end the surviving candidates are re-ranked by their exact float64 distance (ties: lowest row).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "../dsa.h"

namespace rtool::dsa {
namespace {

constexpr int64_t kQueryBlock = 128;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Candidate {
  double lower;  // a lower bound of the exact squared distance
  int64_t row;
};

// The running state of one query within one class.
struct RowState {
  std::vector<double> upper_heap;  // max-heap of the k smallest upper bounds seen
  std::vector<Candidate> candidates;

  void reset() {
    upper_heap.clear();
    candidates.clear();
  }
  double threshold(int64_t k) const {
    return static_cast<int64_t>(upper_heap.size()) < k ? kInf : upper_heap.front();
  }
  void prune(double limit) {
    candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                    [limit](const Candidate& c) { return c.lower > limit; }),
                     candidates.end());
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
void run_kernel(KnnProblem& p) {
  const int64_t num_queries = p.queries.size(0), num_refs = p.refs.size(0), dim = p.queries.size(1);
  const int64_t num_classes = p.offsets.numel() - 1, k = p.k;
  const int64_t* off = p.offsets.const_data_ptr<int64_t>();
  const int64_t* skip = p.self_index.const_data_ptr<int64_t>();
  const scalar_t* queries = p.queries.const_data_ptr<scalar_t>();
  const scalar_t* refs = p.refs.const_data_ptr<scalar_t>();
  double* out_dist = p.distances.mutable_data_ptr<double>();
  int64_t* out_index = p.indices.mutable_data_ptr<int64_t>();
  if (num_queries == 0 || num_classes == 0) return;

  // Distances do not change under a shift; centring on the reference mean keeps the norms, and with them
  // the GEMM's rounding error, small.
  const at::Tensor mean = p.refs.numel() > 0 ? p.refs.to(at::kDouble).mean(0) : at::zeros({dim}, p.refs.options().dtype(at::kDouble));
  const at::Tensor refs_c = (p.refs.to(at::kDouble) - mean).to(p.refs.scalar_type()).contiguous();
  const at::Tensor queries_c = (p.queries.to(at::kDouble) - mean).to(p.queries.scalar_type()).contiguous();
  const at::Tensor ref_sq = refs_c.to(at::kDouble).square().sum(1).contiguous();
  const at::Tensor query_sq = queries_c.to(at::kDouble).square().sum(1).contiguous();
  const double* rsq = ref_sq.const_data_ptr<double>();
  const double* qsq = query_sq.const_data_ptr<double>();

  // |computed - exact| <= slack * (|q| + |r|)^2 for the GEMM form, with room for the centring round-off.
  const double unit = std::numeric_limits<scalar_t>::epsilon() / 2;
  const double slack = 2.0 * static_cast<double>(dim + 8) * unit;

  std::vector<RowState> states(std::min(kQueryBlock, num_queries));
  for (int64_t q0 = 0; q0 < num_queries; q0 += kQueryBlock) {
    const int64_t qn = std::min(kQueryBlock, num_queries - q0);
    const at::Tensor qblock = queries_c.narrow(0, q0, qn);
    for (int64_t c = 0; c < num_classes; ++c) {
      for (int64_t i = 0; i < qn; ++i) states[i].reset();
      for (int64_t r0 = off[c]; r0 < off[c + 1]; r0 += p.chunk) {
        const int64_t rn = std::min(p.chunk, off[c + 1] - r0);
        const at::Tensor rchunk = refs_c.narrow(0, r0, rn);
        const at::Tensor dots = at::mm(qblock, rchunk.t()).contiguous();  // [qn, rn]
        const scalar_t* dot = dots.const_data_ptr<scalar_t>();
        double max_rsq = 0.0;
        for (int64_t j = 0; j < rn; ++j) max_rsq = std::max(max_rsq, rsq[r0 + j]);
        const double max_rnorm = std::sqrt(max_rsq);
        at::parallel_for(0, qn, 8, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            RowState& s = states[i];
            const int64_t skip_row = skip[q0 + i];
            const double qs = qsq[q0 + i];
            const double reach = std::sqrt(qs) + max_rnorm;
            const double bound = slack * reach * reach;
            const scalar_t* drow = dot + i * rn;
            double limit = s.threshold(k);
            for (int64_t j = 0; j < rn; ++j) {
              const int64_t row = r0 + j;
              const double approx = qs + rsq[row] - 2.0 * static_cast<double>(drow[j]);
              const double lower = approx - bound;
              if (lower > limit || row == skip_row) continue;
              s.candidates.push_back({lower, row});
              const double upper = approx + bound;
              if (static_cast<int64_t>(s.upper_heap.size()) < k) {
                s.upper_heap.push_back(upper);
                std::push_heap(s.upper_heap.begin(), s.upper_heap.end());
              } else if (upper < s.upper_heap.front()) {
                std::pop_heap(s.upper_heap.begin(), s.upper_heap.end());
                s.upper_heap.back() = upper;
                std::push_heap(s.upper_heap.begin(), s.upper_heap.end());
              }
              limit = s.threshold(k);
              if (static_cast<int64_t>(s.candidates.size()) > 4 * k + 256) s.prune(limit);
            }
          }
        });
      }
      // Exact re-rank of the survivors and the output rows of this class.
      at::parallel_for(0, qn, 8, [&](int64_t begin, int64_t end) {
        std::vector<std::pair<double, int64_t>> exact;
        for (int64_t i = begin; i < end; ++i) {
          RowState& s = states[i];
          s.prune(s.threshold(k));
          exact.clear();
          const scalar_t* qrow = queries + (q0 + i) * dim;
          for (const Candidate& cand : s.candidates) {
            exact.emplace_back(exact_squared_distance(qrow, refs + cand.row * dim, dim), cand.row);
          }
          const int64_t found = std::min<int64_t>(k, static_cast<int64_t>(exact.size()));
          std::partial_sort(exact.begin(), exact.begin() + found, exact.end());
          double* dist = out_dist + ((q0 + i) * num_classes + c) * k;
          int64_t* index = out_index + ((q0 + i) * num_classes + c) * k;
          for (int64_t t = 0; t < k; ++t) {
            dist[t] = t < found ? std::sqrt(exact[t].first) : kInf;
            index[t] = t < found ? exact[t].second : -1;
          }
        }
      });
    }
  }
  (void)num_refs;
}

}  // namespace

void dsa_knn_cpu_kernel(KnnProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.queries.scalar_type(), "dsa_knn_cpu", [&] { run_kernel<scalar_t>(problem); });
}

}  // namespace rtool::dsa
