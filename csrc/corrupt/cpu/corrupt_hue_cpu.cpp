// CPU kernel of rtool.corrupt_hue: one pixel at a time, in PIL's 8-bit HSV or torchvision's float HSV.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../corrupt.h"
#include "../corrupt_math.h"

namespace rtool::corrupt {

void corrupt_hue_cpu_kernel(HueProblem& p) {
  const int64_t B = p.images.size(0), H = p.images.size(2), W = p.images.size(3);
  const int64_t plane = H * W;
  const double* shifts = p.shifts.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_hue_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B * plane, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / plane, q = i - b * plane;
        const scalar_t* x = in + b * 3 * plane + q;
        scalar_t* o = out + b * 3 * plane + q;
        if (p.pil_exact) {
          int h, s, v, r, g, bl;
          pil_rgb_to_hsv(clip8(static_cast<int>(x[0] * scalar_t(255))), clip8(static_cast<int>(x[plane] * scalar_t(255))),
                         clip8(static_cast<int>(x[2 * plane] * scalar_t(255))), &h, &s, &v);
          h = (h + pil_hue_offset(shifts[b])) & 255;
          pil_hsv_to_rgb(h, s, v, &r, &g, &bl);
          o[0] = static_cast<scalar_t>(r) / scalar_t(255);
          o[plane] = static_cast<scalar_t>(g) / scalar_t(255);
          o[2 * plane] = static_cast<scalar_t>(bl) / scalar_t(255);
        } else {
          float_hue<scalar_t>(x[0], x[plane], x[2 * plane], static_cast<scalar_t>(shifts[b]), o, o + plane,
                              o + 2 * plane);
        }
      }
    });
  });
}

}  // namespace rtool::corrupt
