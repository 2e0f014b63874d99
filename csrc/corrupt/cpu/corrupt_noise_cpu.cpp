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
  if (per_image == 0) return;
  const int64_t* keys = p.keys.const_data_ptr<int64_t>();
  const double* amounts = p.amounts.const_data_ptr<double>();
  const bool gaussian = p.mode == NoiseMode::kGaussian;
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_noise_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B * per_image, 16384, [&](int64_t begin, int64_t end) {
      // Walk image by image inside the chunk, so the image index is not divided out per element.
      for (int64_t start = begin; start < end;) {
        const int64_t b = start / per_image;
        const int64_t stop = std::min(end, (b + 1) * per_image);
        const uint64_t key = static_cast<uint64_t>(keys[b]);
        const double amount = amounts[b];
        const uint32_t first = static_cast<uint32_t>(start - b * per_image);
        if (gaussian) {
          auto put = [&](int64_t i, float n) {
            const scalar_t v = static_cast<scalar_t>(amount * static_cast<double>(n));
            out[i] = std::clamp<scalar_t>(in[i] + v, scalar_t(0), scalar_t(1));
          };
          int64_t i = start;
          uint32_t e = first;
          if ((e & 1u) && i < stop) put(i++, half_normal(key, e++));  // an odd start: its pair began earlier
          for (; i + 1 < stop; i += 2, e += 2) {
            float even, odd;
            half_normal_pair(key, e >> 1, &even, &odd);
            put(i, even);
            put(i + 1, odd);
          }
          if (i < stop) put(i, half_normal(key, e));
        } else {
          const double high = 1.0 - amount;
          for (int64_t i = start; i < stop; ++i) {
            const double u = noise_uniform(key, first + static_cast<uint32_t>(i - start));
            out[i] = u < amount ? scalar_t(0) : (u >= high ? scalar_t(1) : in[i]);
          }
        }
        start = stop;
      }
    });
  });
}

}  // namespace rtool::corrupt
