// CPU kernel: per output row, upsample one activation map into a cache-resident buffer, find its range,
// then write image * mask in one pass. Rows run in parallel.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "../bilinear.h"
#include "../scorecam.h"

namespace rtool::scorecam {
namespace {

struct Geometry {
  int64_t in_channels, height, width;    // image
  int64_t map_channels, map_h, map_w;    // activations
};

// Upsamples map [map_h, map_w] to [height, width]; `relu` clamps the source values first.
void upsample_map(const float* map, const Geometry& g, bool relu, const std::vector<BilinearTap>& taps_x,
                  const std::vector<BilinearTap>& taps_y, std::vector<float>& rows_buf, float* out) {
  // Horizontal pass over the few source rows, then vertical blend per output row.
  for (int64_t sy = 0; sy < g.map_h; ++sy) {
    const float* src = map + sy * g.map_w;
    float* dst = rows_buf.data() + sy * g.width;
    for (int64_t x = 0; x < g.width; ++x) {
      const BilinearTap& t = taps_x[x];
      float a = src[t.lo], b = src[t.hi];
      if (relu) {
        a = std::max(a, 0.f);
        b = std::max(b, 0.f);
      }
      dst[x] = t.w_lo * a + t.w_hi * b;
    }
  }
  for (int64_t y = 0; y < g.height; ++y) {
    const BilinearTap& t = taps_y[y];
    const float* r0 = rows_buf.data() + t.lo * g.width;
    const float* r1 = rows_buf.data() + t.hi * g.width;
    float* dst = out + y * g.width;
    const float w0 = t.w_lo, w1 = t.w_hi;
    for (int64_t x = 0; x < g.width; ++x) dst[x] = w0 * r0[x] + w1 * r1[x];
  }
}

template <typename scalar_t>
void write_masked(const scalar_t* image, const float* mask, const Geometry& g, bool channels_last,
                  scalar_t* out) {
  const int64_t pixels = g.height * g.width;
  if (channels_last) {
    for (int64_t p = 0; p < pixels; ++p) {
      const float m = mask[p];
      for (int64_t c = 0; c < g.in_channels; ++c) {
        const int64_t i = p * g.in_channels + c;
        out[i] = static_cast<scalar_t>(static_cast<float>(image[i]) * m);
      }
    }
    return;
  }
  for (int64_t c = 0; c < g.in_channels; ++c) {
    const scalar_t* src = image + c * pixels;
    scalar_t* dst = out + c * pixels;
    for (int64_t p = 0; p < pixels; ++p) dst[p] = static_cast<scalar_t>(static_cast<float>(src[p]) * mask[p]);
  }
}

}  // namespace

void scorecam_masks_cpu_kernel(MaskProblem& problem) {
  const Geometry g{problem.images.size(1),      problem.images.size(2),      problem.images.size(3),
                   problem.activations.size(1), problem.activations.size(2), problem.activations.size(3)};
  const int64_t rows = problem.row_image.numel();
  if (rows == 0) return;

  std::vector<BilinearTap> taps_x(g.width), taps_y(g.height);
  for (int64_t x = 0; x < g.width; ++x) taps_x[x] = bilinear_tap(x, g.map_w, g.width);
  for (int64_t y = 0; y < g.height; ++y) taps_y[y] = bilinear_tap(y, g.map_h, g.height);

  const int64_t pixels = g.height * g.width;
  const int64_t image_numel = g.in_channels * pixels;
  const int64_t map_numel = g.map_h * g.map_w;
  const bool parity = problem.mode == MaskMode::kParity;
  const float eps = static_cast<float>(problem.eps);
  const float* activations = problem.activations.const_data_ptr<float>();
  const int64_t* row_image = problem.row_image.const_data_ptr<int64_t>();
  const int64_t* row_channel = problem.row_channel.const_data_ptr<int64_t>();
  float* ranges = problem.ranges.mutable_data_ptr<float>();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, problem.images.scalar_type(), "scorecam_masks_cpu", [&] {
    const scalar_t* images = problem.images.const_data_ptr<scalar_t>();
    scalar_t* masked = problem.masked.mutable_data_ptr<scalar_t>();
    // Enough rows per task to amortise the buffers, few enough to keep both cores busy.
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, pixels / 64));
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> rows_buf(g.map_h * g.width);
      std::vector<float> mask(pixels);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = row_image[r], k = row_channel[r];
        const float* map = activations + (b * g.map_channels + k) * map_numel;
        upsample_map(map, g, parity, taps_x, taps_y, rows_buf, mask.data());
        float lo = std::numeric_limits<float>::infinity(), hi = -lo;
        for (int64_t p = 0; p < pixels; ++p) {
          lo = std::min(lo, mask[p]);
          hi = std::max(hi, mask[p]);
        }
        const float range = effective_range(lo, hi);
        ranges[r] = range;
        // parity: U / range (1 when the range is 0), no min shift; minmax: (U - min) / (range + eps).
        const float shift = parity ? 0.f : lo;
        // Divide (not multiply by a reciprocal) so the result rounds exactly as the reference does.
        // A constant map in minmax mode is a zero mask.
        const float denom = parity ? (range > 0.f ? range : 1.f) : range + eps;
        if (!parity && range == 0.f) {
          std::fill(mask.begin(), mask.end(), 0.f);
        } else {
          for (int64_t p = 0; p < pixels; ++p) mask[p] = (mask[p] - shift) / denom;
        }
        write_masked(images + b * image_numel, mask.data(), g, problem.channels_last, masked + r * image_numel);
      }
    });
  });
}

}  // namespace rtool::scorecam
