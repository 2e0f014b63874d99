#pragma once
// Source taps of bilinear resampling with align_corners=False, computed exactly as ATen's
// upsample_bilinear2d does (float arithmetic, scale = in/out, negative source clamped to 0), so the
// masks match F.interpolate to the last bit or so.
#include <cstdint>

#ifdef __CUDACC__
#define RTOOL_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RTOOL_HOST_DEVICE inline
#endif

namespace rtool::scorecam {

inline constexpr float kConstantRangeTolerance = 1e-6f;

struct BilinearTap {
  int64_t lo;    // first source index
  int64_t hi;    // second source index (== lo at the upper edge)
  float w_lo;    // weight of lo
  float w_hi;    // weight of hi
};

RTOOL_HOST_DEVICE BilinearTap bilinear_tap(int64_t dst, int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  float src = scale * (static_cast<float>(dst) + 0.5f) - 0.5f;
  if (src < 0.f) src = 0.f;
  int64_t lo = static_cast<int64_t>(src);
  if (lo > in_size - 1) lo = in_size - 1;
  const int64_t hi = lo + ((lo < in_size - 1) ? 1 : 0);
  const float w_hi = src - static_cast<float>(lo);
  return {lo, hi, 1.f - w_hi, w_hi};
}

// max - min of an upsampled map, with float rounding noise of a constant map (resampling weights that do
// not sum to exactly 1) treated as 0, so a constant map is "range 0" whichever way it was resampled.
RTOOL_HOST_DEVICE float effective_range(float lo, float hi) {
  const float range = hi - lo;
  const float magnitude = (hi > -lo) ? hi : -lo;
  return range <= kConstantRangeTolerance * magnitude ? 0.f : range;
}

}  // namespace rtool::scorecam
