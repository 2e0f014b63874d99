// CPU kernel of rtool.corrupt_box_blur: each (image, channel) plane is blurred `passes` times with a
// zero-padded 3x3 box (as a horizontal then a vertical 3-tap sum, which is the same filter), then blended.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "../corrupt.h"

namespace rtool::corrupt {
namespace {

template <typename T>
void box_pass(T* plane, T* tmp, int64_t H, int64_t W) {
  for (int64_t y = 0; y < H; ++y) {
    const T* row = plane + y * W;
    T* t = tmp + y * W;
    for (int64_t x = 0; x < W; ++x) {
      T s = row[x];
      if (x > 0) s += row[x - 1];
      if (x + 1 < W) s += row[x + 1];
      t[x] = s;
    }
  }
  const T ninth = T(1) / T(9);
  for (int64_t y = 0; y < H; ++y) {
    T* row = plane + y * W;
    const T* mid = tmp + y * W;
    const T* up = y > 0 ? tmp + (y - 1) * W : nullptr;
    const T* down = y + 1 < H ? tmp + (y + 1) * W : nullptr;
    for (int64_t x = 0; x < W; ++x) {
      T s = mid[x];
      if (up) s += up[x];
      if (down) s += down[x];
      row[x] = s * ninth;
    }
  }
}

}  // namespace

void corrupt_box_blur_cpu_kernel(BlurProblem& p) {
  const int64_t B = p.images.size(0), C = p.images.size(1), H = p.images.size(2), W = p.images.size(3);
  const double* weights = p.weights.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_box_blur_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> blurred(H * W), tmp(H * W);
      for (int64_t plane = begin; plane < end; ++plane) {
        const scalar_t* x = in + plane * H * W;
        std::copy(x, x + H * W, blurred.begin());
        for (int64_t k = 0; k < p.passes; ++k) box_pass(blurred.data(), tmp.data(), H, W);
        const scalar_t w = static_cast<scalar_t>(weights[plane / C]);
        scalar_t* o = out + plane * H * W;
        for (int64_t i = 0; i < H * W; ++i) {
          o[i] = std::clamp<scalar_t>((scalar_t(1) - w) * x[i] + w * blurred[i], scalar_t(0), scalar_t(1));
        }
      }
    });
  });
}

}  // namespace rtool::corrupt
