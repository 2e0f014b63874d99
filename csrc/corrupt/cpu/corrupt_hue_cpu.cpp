// CPU kernel of rtool.corrupt_hue: one pixel at a time, in PIL's 8-bit HSV or torchvision's float HSV.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "../corrupt.h"
#include "../corrupt_math.h"

namespace rtool::corrupt {
namespace {

template <typename T>
void hue_pixels(const T* x, T* o, int64_t count, int64_t plane, double shift, bool pil_exact) {
  if (pil_exact) {
    const int offset = pil_hue_offset(shift);
    for (int64_t q = 0; q < count; ++q) {
      int h, s, v, r, g, b;
      pil_rgb_to_hsv(clip8(static_cast<int>(x[q] * T(255))), clip8(static_cast<int>(x[q + plane] * T(255))),
                     clip8(static_cast<int>(x[q + 2 * plane] * T(255))), &h, &s, &v);
      pil_hsv_to_rgb((h + offset) & 255, s, v, &r, &g, &b);
      o[q] = static_cast<T>(r) / T(255);
      o[q + plane] = static_cast<T>(g) / T(255);
      o[q + 2 * plane] = static_cast<T>(b) / T(255);
    }
  } else {
    const T turn = static_cast<T>(shift);
    for (int64_t q = 0; q < count; ++q) {
      float_hue<T>(x[q], x[q + plane], x[q + 2 * plane], turn, o + q, o + q + plane, o + q + 2 * plane);
    }
  }
}

}  // namespace

void corrupt_hue_cpu_kernel(HueProblem& p) {
  const int64_t B = p.images.size(0), H = p.images.size(2), W = p.images.size(3);
  const int64_t plane = H * W;
  if (B == 0 || plane == 0) return;
  const double* shifts = p.shifts.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_hue_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B * plane, 8192, [&](int64_t begin, int64_t end) {
      for (int64_t start = begin; start < end;) {  // image by image inside the chunk
        const int64_t b = start / plane;
        const int64_t stop = std::min(end, (b + 1) * plane);
        const int64_t q = start - b * plane;
        hue_pixels(in + b * 3 * plane + q, out + b * 3 * plane + q, stop - start, plane, shifts[b], p.pil_exact);
        start = stop;
      }
    });
  });
}

}  // namespace rtool::corrupt
