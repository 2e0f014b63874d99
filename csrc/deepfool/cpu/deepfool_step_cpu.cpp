// CPU kernel: per sample, the norm and ratio of each candidate, the first smallest ratio, then the step.
// Samples run in parallel.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../deepfool.h"

namespace rtool::deepfool {

void deepfool_step_cpu_kernel(StepProblem& problem) {
  const int64_t batch = problem.grad_diff.size(0);
  const int64_t cands = problem.grad_diff.size(1);
  const int64_t dims = problem.grad_diff.size(2);
  if (batch == 0) return;
  int64_t* chosen = problem.chosen.mutable_data_ptr<int64_t>();

  AT_DISPATCH_FLOATING_TYPES(problem.grad_diff.scalar_type(), "deepfool_step_cpu", [&] {
    const scalar_t* f = problem.logit_diff.const_data_ptr<scalar_t>();
    const scalar_t* w = problem.grad_diff.const_data_ptr<scalar_t>();
    scalar_t* step = problem.step.mutable_data_ptr<scalar_t>();
    scalar_t* distance = problem.distance.mutable_data_ptr<scalar_t>();
    const scalar_t eps = static_cast<scalar_t>(problem.step_eps);
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, cands * dims));
    at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const scalar_t* fb = f + b * cands;
        const scalar_t* wb = w + b * cands * dims;
        scalar_t best = std::numeric_limits<scalar_t>::infinity(), best_norm = 0;
        int64_t best_k = -1;
        for (int64_t k = 0; k < cands; ++k) {
          const scalar_t* wk = wb + k * dims;
          double squares = 0;  // double accumulation: the norm is the step's denominator
          for (int64_t d = 0; d < dims; ++d) squares += static_cast<double>(wk[d]) * static_cast<double>(wk[d]);
          const scalar_t norm = static_cast<scalar_t>(std::sqrt(squares));
          // A zero-norm gradient difference has no linearised boundary: ratio +inf, never chosen. NaN never wins.
          if (!(norm > 0)) continue;
          const scalar_t ratio = std::abs(fb[k]) / norm;
          if (ratio < best) {
            best = ratio;
            best_norm = norm;
            best_k = k;
          }
        }
        chosen[b] = best_k;
        distance[b] = best;
        scalar_t* out = step + b * dims;
        if (best_k < 0) {
          std::fill(out, out + dims, scalar_t(0));
          continue;
        }
        const scalar_t scale = (best + eps) / best_norm;
        const scalar_t* wl = wb + best_k * dims;
        for (int64_t d = 0; d < dims; ++d) out[d] = scale * wl[d];
      }
    });
  });
}

}  // namespace rtool::deepfool
