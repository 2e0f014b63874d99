// CPU kernel of rtool.corrupt_resample: pixelate (block means, reflect-padded back to H x W), and PIL's
// separable bilinear resampling (libImaging/Resample.c: horizontal pass, then vertical; antialiased when
// shrinking) for the thumbnail round trip and the crop-and-stretch. With `quantize` every pass works in
// PIL's 8-bit fixed point on 8-bit values, as PIL does; otherwise in floating point.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <vector>

#include "../corrupt.h"
#include "../corrupt_math.h"

namespace rtool::corrupt {
namespace {

struct Taps {
  std::vector<int> first, count, fixed;
  std::vector<double> weights;  // kMaxTaps per output index
};

Taps make_taps(int in_len, int out_len) {
  Taps t;
  t.first.resize(out_len);
  t.count.resize(out_len);
  t.weights.assign(static_cast<size_t>(out_len) * kMaxTaps, 0.0);
  t.fixed.assign(static_cast<size_t>(out_len) * kMaxTaps, 0);
  for (int o = 0; o < out_len; ++o) {
    double* w = t.weights.data() + static_cast<size_t>(o) * kMaxTaps;
    t.count[o] = pil_taps(in_len, out_len, o, &t.first[o], w);
    for (int k = 0; k < t.count[o]; ++k) t.fixed[static_cast<size_t>(o) * kMaxTaps + k] = pil_fixed_weight(w[k]);
  }
  return t;
}

// One 1-D pass on a plane stored with row stride `stride`: along x (axis 1) or y (axis 0), reading
// `in_len` samples from `offset` and writing `out_len`; the other dimension has `other` samples.
template <typename T>
void resample_pass(const T* in, T* out, int64_t stride, int axis, int offset, int in_len, int out_len, int other,
                   bool fixed) {
  const Taps taps = make_taps(in_len, out_len);
  for (int o = 0; o < out_len; ++o) {
    const int n = taps.count[o];
    const int first = offset + taps.first[o];
    const double* w = taps.weights.data() + static_cast<size_t>(o) * kMaxTaps;
    const int* k = taps.fixed.data() + static_cast<size_t>(o) * kMaxTaps;
    for (int j = 0; j < other; ++j) {
      const T* src = axis == 1 ? in + j * stride + first : in + static_cast<int64_t>(first) * stride + j;
      const int64_t step = axis == 1 ? 1 : stride;
      T* dst = axis == 1 ? out + j * stride + o : out + static_cast<int64_t>(o) * stride + j;
      if (fixed) {
        int ss = 1 << (kPrecisionBits - 1);
        for (int t = 0; t < n; ++t) ss += static_cast<int>(src[t * step]) * k[t];
        *dst = static_cast<T>(pil_clip_fixed(ss));
      } else {
        T ss = T(0);
        for (int t = 0; t < n; ++t) ss += src[t * step] * static_cast<T>(w[t]);
        *dst = ss;
      }
    }
  }
}

template <typename T>
void pixelate_plane(const T* in, T* out, int H, int W, int block, std::vector<T>& means) {
  const int ph = H / block, pw = W / block;
  means.assign(static_cast<size_t>(ph) * pw, T(0));
  for (int by = 0; by < ph; ++by)
    for (int bx = 0; bx < pw; ++bx) {
      T s = T(0);
      for (int i = 0; i < block; ++i)
        for (int j = 0; j < block; ++j) s += in[(by * block + i) * W + bx * block + j];
      means[by * pw + bx] = s / static_cast<T>(block * block);
    }
  const int ny = ph * block, nx = pw * block;
  const int top = (H - ny) / 2, left = (W - nx) / 2;
  for (int y = 0; y < H; ++y) {
    const int sy = reflect_index(y - top, ny) / block;
    for (int x = 0; x < W; ++x) out[y * W + x] = means[sy * pw + reflect_index(x - left, nx) / block];
  }
}

}  // namespace

void corrupt_resample_cpu_kernel(ResampleProblem& p) {
  const int64_t B = p.images.size(0), C = p.images.size(1);
  const int H = static_cast<int>(p.images.size(2)), W = static_cast<int>(p.images.size(3));
  const int64_t* params = p.params.const_data_ptr<int64_t>();
  const int64_t width = p.params.size(1);
  AT_DISPATCH_FLOATING_TYPES(p.images.scalar_type(), "corrupt_resample_cpu", [&] {
    const scalar_t* in = p.images.const_data_ptr<scalar_t>();
    scalar_t* out = p.out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, B * C, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> a(static_cast<size_t>(H) * W), t(static_cast<size_t>(H) * W), means;
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t* q = params + (plane / C) * width;
        const scalar_t* x = in + plane * H * W;
        scalar_t* o = out + plane * H * W;
        if (p.mode == ResampleMode::kPixelate) {
          pixelate_plane(x, o, H, W, static_cast<int>(q[0]), means);
          continue;
        }
        const bool fixed = p.quantize;
        for (int64_t i = 0; i < static_cast<int64_t>(H) * W; ++i) {
          a[i] = fixed ? static_cast<scalar_t>(clip8(static_cast<int>(x[i] * scalar_t(255)))) : x[i];
        }
        if (p.mode == ResampleMode::kThumbnail) {
          const int h = static_cast<int>(q[0]), w = static_cast<int>(q[1]);
          if (w != W) resample_pass(a.data(), t.data(), W, 1, 0, W, w, H, fixed);
          else t = a;
          if (h != H) resample_pass(t.data(), a.data(), W, 0, 0, H, h, w, fixed);
          else a = t;
          if (w != W) resample_pass(a.data(), t.data(), W, 1, 0, w, W, h, fixed);
          else t = a;
          if (h != H) resample_pass(t.data(), a.data(), W, 0, 0, h, H, W, fixed);
          else a = t;
        } else {
          const int axis = static_cast<int>(q[0]), cut = static_cast<int>(q[1]);
          if (cut > 0) {
            if (axis == 0) resample_pass(a.data(), t.data(), W, 0, cut, H - cut, H, W, fixed);
            else resample_pass(a.data(), t.data(), W, 1, cut, W - cut, W, H, fixed);
            a.swap(t);
          }
        }
        for (int64_t i = 0; i < static_cast<int64_t>(H) * W; ++i) o[i] = fixed ? a[i] / scalar_t(255) : a[i];
      }
    });
  });
}

}  // namespace rtool::corrupt
