// CPU kernel of rtool.corrupt_affine: PIL's nearest affine transform (libImaging/Geometry.c) with its three
// coordinate paths (see pil_affine_path), so that pixel-boundary decisions match PIL; black outside.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <vector>

#include "../corrupt.h"
#include "../corrupt_math.h"

namespace rtool::corrupt {
namespace {

template <typename T>
void warp_image(const T* src, T* dst, const double* a, int64_t C, int64_t H, int64_t W, bool quantize) {
  const int path = pil_affine_path(a, static_cast<int>(W), static_cast<int>(H));
  if (path == kAffineScale) {
    std::vector<int> xintab(W);
    double xo = a[2] + a[0] * 0.5;
    for (int64_t x = 0; x < W; ++x, xo += a[0]) xintab[x] = pil_coord(xo);
    double yo = a[5] + a[4] * 0.5;
    for (int64_t y = 0; y < H; ++y, yo += a[4]) {
      const int yin = pil_coord(yo);
      for (int64_t x = 0; x < W; ++x) put_pixel(src, dst, C, H, W, y, x, xintab[x], yin, quantize);
    }
  } else if (path == kAffineFixed) {
    const FixedAffine f = pil_fixed_affine(a);
    int row_x = f.a2, row_y = f.a5;
    for (int64_t y = 0; y < H; ++y, row_x += f.a1, row_y += f.a4) {
      int xx = row_x, yy = row_y;
      for (int64_t x = 0; x < W; ++x, xx += f.a0, yy += f.a3)
        put_pixel(src, dst, C, H, W, y, x, xx >> 16, yy >> 16, quantize);
    }
  } else {
    double xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
    double yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
    for (int64_t y = 0; y < H; ++y, xo += a[1], yo += a[4]) {
      double xx = xo, yy = yo;
      for (int64_t x = 0; x < W; ++x, xx += a[0], yy += a[3]) {
        put_pixel(src, dst, C, H, W, y, x, pil_coord(xx), pil_coord(yy), quantize);
      }
    }
  }
}

}  // namespace

void corrupt_affine_cpu_kernel(AffineProblem& p) {
  const int64_t B = p.images.size(0), C = p.images.size(1), H = p.images.size(2), W = p.images.size(3);
  const double* matrices = p.matrices.const_data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_affine_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        warp_image(in + b * C * H * W, out + b * C * H * W, matrices + 6 * b, C, H, W, p.quantize);
      }
    });
  });
}

}  // namespace rtool::corrupt
