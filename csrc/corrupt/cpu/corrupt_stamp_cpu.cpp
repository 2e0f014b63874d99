// CPU kernel of rtool.corrupt_stamp: each image draws its stamps in order (later ones overwrite or, for
// translucent discs, compound on earlier ones); images run in parallel.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../corrupt.h"
#include "../corrupt_math.h"

namespace rtool::corrupt {
namespace {

template <typename T>
struct Canvas {
  T* image;
  int64_t channels, height, width;

  void put(int64_t y, int64_t x, T fill, bool blend) const {
    if (y < 0 || y >= height || x < 0 || x >= width) return;
    T* p = image + y * width + x;
    for (int64_t c = 0; c < channels; ++c, p += height * width) {
      *p = blend ? T(0.5) * *p + T(0.5) * fill : fill;
    }
  }
};

template <typename T>
void stamp_image(const Canvas<T>& canvas, const int64_t* stamps, const T* fills, int64_t count) {
  for (int64_t s = 0; s < count; ++s) {
    const int64_t* st = stamps + s * kStampFields;
    const int64_t kind = st[0], r0 = st[1], c0 = st[2], h = st[3], w = st[4], sr = st[5], sc = st[6];
    const T fill = fills[s];
    switch (kind) {
      case kStampRect:
        for (int64_t i = 0; i < h; ++i)
          for (int64_t j = 0; j < w; ++j) canvas.put(r0 + i * sr, c0 + j * sc, fill, false);
        break;
      case kStampRhombus:
        for (int i = -kShapeRadius; i <= kShapeRadius; ++i)
          for (int k = -kShapeRadius - 1; k <= kShapeRadius; ++k)
            if (in_rhombus(i, k)) canvas.put(r0 + i, c0 + k, fill, false);
        break;
      case kStampDisc:
      case kStampDiscBlend:
        for (int i = -kShapeRadius; i <= kShapeRadius; ++i)
          for (int k = -kShapeRadius; k <= kShapeRadius; ++k)
            if (in_disc(i, k)) canvas.put(r0 + i, c0 + k, fill, kind == kStampDiscBlend);
        break;
      default:
        break;
    }
  }
}

}  // namespace

void corrupt_stamp_cpu_kernel(StampProblem& p) {
  const int64_t B = p.out.size(0), C = p.out.size(1), H = p.out.size(2), W = p.out.size(3);
  const int64_t S = p.stamps.size(1);
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "corrupt_stamp_cpu", [&] {
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    const int64_t* stamps = p.stamps.const_data_ptr<int64_t>();
    const scalar_t* fills = p.fills.const_data_ptr<scalar_t>();
    at::parallel_for(0, B, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const Canvas<scalar_t> canvas{out + b * C * H * W, C, H, W};
        stamp_image(canvas, stamps + b * S * kStampFields, fills + b * S, S);
      }
    });
  });
}

}  // namespace rtool::corrupt
