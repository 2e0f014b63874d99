// CPU kernel of rtool.corrupt_noise: every element draws from the counter-based hash of its image's key
// and its position, so the result does not depend on the batch, the thread count or the device.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "../corrupt.h"
#include "../corrupt_math.h"

namespace rtool::corrupt {

void corrupt_noise_cpu_kernel(NoiseProblem& p) {
  const int64_t B = p.images.size(0);
  const int64_t per_image = B > 0 ? p.images.numel() / B : 0;
  const int64_t* keys = p.keys.const_data_ptr<int64_t>();
  const double* amounts = p.amounts.const_data_ptr<double>();
  const bool gaussian = p.mode == NoiseMode::kGaussian;
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_noise_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B * per_image, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / per_image;
        const uint32_t e = static_cast<uint32_t>(i - b * per_image);
        const uint64_t key = static_cast<uint64_t>(keys[b]);
        const scalar_t v = in[i];
        if (gaussian) {
          const scalar_t n = static_cast<scalar_t>(amounts[b] * half_normal(key, e));
          out[i] = std::clamp<scalar_t>(v + n, scalar_t(0), scalar_t(1));
        } else {
          const double u = noise_uniform(key, e);
          out[i] = u < amounts[b] ? scalar_t(0) : (u >= 1.0 - amounts[b] ? scalar_t(1) : v);
        }
      }
    });
  });
}

}  // namespace rtool::corrupt
