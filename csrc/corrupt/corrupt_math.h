#pragma once
// Arithmetic shared by the CPU and CUDA corruption kernels (plain C++, no torch or CUDA headers), so both
// devices compute the same values: the counter-based noise, the stamp shapes, PIL's 8-bit HSV, PIL's
// bilinear resampling taps and the reflect index of pixelate.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RTOOL_HD __host__ __device__ __forceinline__
#else
#define RTOOL_HD inline
#endif

namespace rtool::corrupt {

// ---- stamps -------------------------------------------------------------------------------------------
// One stamp is 7 int64s: kind, r0, c0, h, w, stride_r, stride_c (see rtool/ops/corrupt.py).
enum StampKind : int { kStampNone = 0, kStampRect = 1, kStampRhombus = 2, kStampDisc = 3, kStampDiscBlend = 4 };
constexpr int kStampFields = 7;
constexpr int kShapeRadius = 6;      // rhombus and disc rows are centre-6 .. centre+6
constexpr int kRhombusWidth = 14;    // rhombus columns are centre-7 .. centre+6

// Disc half-width of row offset |i| (121 px): 6, 6, 5, 5, 4, 3, 1.
RTOOL_HD int disc_half_width(int i) {
  const int a = i < 0 ? -i : i;
  switch (a) {
    case 0: case 1: return 6;
    case 2: case 3: return 5;
    case 4: return 4;
    case 5: return 3;
    case 6: return 1;
    default: return -1;
  }
}

// Whether offset (i, k) from the centre is inside the rhombus: k in [-(7-|i|), 6-|i|] (98 px).
RTOOL_HD bool in_rhombus(int i, int k) {
  const int a = i < 0 ? -i : i;
  return a <= kShapeRadius && k >= -(7 - a) && k <= 6 - a;
}

RTOOL_HD bool in_disc(int i, int k) {
  const int h = disc_half_width(i);
  return h >= 0 && k >= -h && k <= h;
}

// ---- counter-based noise -------------------------------------------------------------------------------
// A stateless 32-bit hash of (key, element counter): the noise of an element depends only on the image's
// key and the element's position, never on the batch or the device. The multipliers are odd and below
// 2^31 so that rtool/ops/reference.py can replay the hash in int64 arithmetic.
RTOOL_HD uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x5bd1e995u;
  x ^= x >> 16;
  return x;
}

RTOOL_HD uint32_t noise_bits(uint64_t key, uint32_t counter) {
  const uint32_t lo = static_cast<uint32_t>(key & 0xffffffffu);
  const uint32_t hi = static_cast<uint32_t>((key >> 32) & 0xffffffffu);
  return mix32(mix32(counter ^ lo) ^ hi);
}

// A uniform in (0, 1) with 23 bits, exactly representable in float32.
RTOOL_HD float noise_uniform(uint64_t key, uint32_t counter) {
  return (static_cast<float>(noise_bits(key, counter) >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// |N(0, 1)| by Box-Muller, in float32: elements 2k and 2k+1 share the uniforms at counters 2k and 2k+1
// and take the cosine and the sine branch.
RTOOL_HD void half_normal_pair(uint64_t key, uint32_t pair, float* even, float* odd) {
  const float u1 = noise_uniform(key, 2u * pair);
  const float u2 = noise_uniform(key, 2u * pair + 1u);
  const float r = std::sqrt(-2.0f * std::log(u1));
  const float angle = 6.2831853071795865f * u2;
  *even = std::fabs(r * std::cos(angle));
  *odd = std::fabs(r * std::sin(angle));
}

RTOOL_HD float half_normal(uint64_t key, uint32_t element) {
  float even, odd;
  half_normal_pair(key, element >> 1, &even, &odd);
  return (element & 1u) ? odd : even;
}

// ---- PIL 8-bit HSV (libImaging/Convert.c rgb2hsv_row / hsv2rgb, with their float/double mix) ------------
RTOOL_HD int clip8(int v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

RTOOL_HD void pil_rgb_to_hsv(int r, int g, int b, int* uh, int* us, int* uv) {
  const int maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  const int minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  *uv = maxc;
  if (minc == maxc) {
    *uh = 0;
    *us = 0;
    return;
  }
  const float cr = static_cast<float>(maxc - minc);
  const float s = cr / static_cast<float>(maxc);
  const float rc = static_cast<float>(maxc - r) / cr;
  const float gc = static_cast<float>(maxc - g) / cr;
  const float bc = static_cast<float>(maxc - b) / cr;
  float h;
  if (r == maxc) {
    h = bc - gc;
  } else if (g == maxc) {
    h = static_cast<float>(2.0 + rc - bc);
  } else {
    h = static_cast<float>(4.0 + gc - rc);
  }
  // fmod(h / 6 + 1, 1) as PIL writes it; the argument lies in [5/6, 11/6], where subtracting 1 is exact.
  const double wrapped = h / 6.0 + 1.0;
  h = static_cast<float>(wrapped >= 1.0 ? wrapped - 1.0 : wrapped);
  *uh = clip8(static_cast<int>(h * 255.0));
  *us = clip8(static_cast<int>(s * 255.0));
}

RTOOL_HD void pil_hsv_to_rgb(int h, int s, int v, int* r, int* g, int* b) {
  if (s == 0) {
    *r = *g = *b = v;
    return;
  }
  const int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
  const float f = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
  const float fs = static_cast<float>(static_cast<float>(s) / 255.0);
  const int p = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs))));
  const int q = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * f))));
  const int t = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * (1.0 - f)))));
  switch (i % 6) {
    case 0: *r = v; *g = t; *b = p; break;
    case 1: *r = q; *g = v; *b = p; break;
    case 2: *r = p; *g = v; *b = t; break;
    case 3: *r = p; *g = q; *b = v; break;
    case 4: *r = t; *g = p; *b = v; break;
    default: *r = v; *g = p; *b = q; break;
  }
}

// Hue shift in PIL's 8 bits: H += trunc(shift * 255) modulo 256 (explicitly, for negative shifts too).
RTOOL_HD int pil_hue_offset(double shift) {
  const int units = static_cast<int>(shift * 255.0);
  return ((units % 256) + 256) % 256;
}

// torchvision's float HSV round trip (transforms/_functional_tensor.py _rgb2hsv / _hsv2rgb) with the hue
// moved by `shift` turns modulo 1.
template <typename T>
RTOOL_HD void float_hue(T r, T g, T b, T shift, T* ro, T* go, T* bo) {
  const T maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  const T minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  const bool eqc = maxc == minc;
  const T cr = maxc - minc;
  const T s = cr / (eqc ? T(1) : maxc);
  const T div = eqc ? T(1) : cr;
  const T rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  T h;
  if (maxc == r) {
    h = bc - gc;
  } else if (maxc == g) {
    h = (T(2) + rc) - bc;
  } else {
    h = (T(4) + gc) - rc;
  }
  const T wrapped = h / T(6) + T(1);  // fmod(., 1) of a value in [5/6, 11/6]: an exact subtraction
  h = wrapped >= T(1) ? wrapped - T(1) : wrapped;
  h = h + shift;
  h = h - std::floor(h);  // Python-style modulo 1
  const T v = maxc;
  const T h6 = h * T(6);
  const T fi = std::floor(h6);
  const T f = h6 - fi;
  int i = static_cast<int>(fi) % 6;
  if (i < 0) i += 6;
  auto clamp01 = [](T x) { return x < T(0) ? T(0) : (x > T(1) ? T(1) : x); };
  const T p = clamp01(v * (T(1) - s));
  const T q = clamp01(v * (T(1) - s * f));
  const T t = clamp01(v * (T(1) - s * (T(1) - f)));
  switch (i) {
    case 0: *ro = v; *go = t; *bo = p; break;
    case 1: *ro = q; *go = v; *bo = p; break;
    case 2: *ro = p; *go = v; *bo = t; break;
    case 3: *ro = p; *go = q; *bo = v; break;
    case 4: *ro = t; *go = p; *bo = v; break;
    default: *ro = v; *go = p; *bo = q; break;
  }
}

// ---- PIL affine nearest (libImaging/Geometry.c ImagingTransformAffine) --------------------------------
// PIL picks one of three paths, which round differently at pixel boundaries: a pure scale/translation
// (b == d == 0) accumulates double coordinates; otherwise, when the four corners fit, 16.16 fixed point;
// otherwise double coordinates accumulated along rows. Source index = the truncated coordinate, and a
// negative coordinate is outside.
enum AffinePath : int { kAffineScale = 0, kAffineFixed = 1, kAffineFloat = 2 };

RTOOL_HD int pil_coord(double v) { return v < 0.0 ? -1 : static_cast<int>(v); }

RTOOL_HD int pil_floor(double v) { return v < 0.0 ? static_cast<int>(std::floor(v)) : static_cast<int>(v); }

RTOOL_HD int pil_fix16(double v) { return pil_floor(v * 65536.0 + 0.5); }

RTOOL_HD bool pil_check_fixed(const double* a, int x, int y) {
  return std::fabs(x * a[0] + y * a[1] + a[2]) < 32768.0 && std::fabs(x * a[3] + y * a[4] + a[5]) < 32768.0;
}

RTOOL_HD int pil_affine_path(const double* a, int width, int height) {
  if (a[1] == 0 && a[3] == 0) return kAffineScale;
  if (pil_check_fixed(a, 0, 0) && pil_check_fixed(a, width, height) && pil_check_fixed(a, 0, height) &&
      pil_check_fixed(a, width, 0)) {
    return kAffineFixed;
  }
  return kAffineFloat;
}

// Source pixel (xin, yin) of output row y, column x for the fixed-point path (integer sums are exact, so
// the per-pixel form equals PIL's running sums).
struct FixedAffine {
  int a0, a1, a2, a3, a4, a5;
};

RTOOL_HD FixedAffine pil_fixed_affine(const double* a) {
  return {pil_fix16(a[0]), pil_fix16(a[1]), pil_fix16(a[2] + a[0] * 0.5 + a[1] * 0.5),
          pil_fix16(a[3]), pil_fix16(a[4]), pil_fix16(a[5] + a[3] * 0.5 + a[4] * 0.5)};
}

// ---- PIL bilinear resampling taps (libImaging/Resample.c precompute_coeffs, support 1) ------------------
constexpr int kMaxTaps = 64;        // enough for shrinking by up to 31x
constexpr int kPrecisionBits = 22;  // PIL's 8-bit fixed point: 32 - 8 - 2

RTOOL_HD double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// Taps of output index `xx` when resizing `in_size` samples to `out_size`: the first input index and the
// normalised weights. Returns the number of taps.
RTOOL_HD int pil_taps(int in_size, int out_size, int xx, int* first, double* weights) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 1.0 * filterscale;
  const double center = (xx + 0.5) * scale;
  const double ss = 1.0 / filterscale;
  int xmin = static_cast<int>(center - support + 0.5);
  if (xmin < 0) xmin = 0;
  int xmax = static_cast<int>(center + support + 0.5);
  if (xmax > in_size) xmax = in_size;
  xmax -= xmin;
  if (xmax > kMaxTaps) xmax = kMaxTaps;
  double ww = 0.0;
  for (int x = 0; x < xmax; ++x) {
    const double w = bilinear_filter((x + xmin - center + 0.5) * ss);
    weights[x] = w;
    ww += w;
  }
  for (int x = 0; x < xmax; ++x) {
    if (ww != 0.0) weights[x] /= ww;
  }
  *first = xmin;
  return xmax;
}

RTOOL_HD int pil_fixed_weight(double w) {
  const double scaled = w * static_cast<double>(1 << kPrecisionBits);
  return w < 0 ? static_cast<int>(-0.5 + scaled) : static_cast<int>(0.5 + scaled);
}

RTOOL_HD int pil_clip_fixed(int ss) {
  if (ss >= (1 << kPrecisionBits << 8)) return 255;
  if (ss <= 0) return 0;
  return ss >> kPrecisionBits;
}

// ---- pixelate -----------------------------------------------------------------------------------------
// Index into a length-n signal of position i of its reflect-padded version (edge not repeated).
RTOOL_HD int reflect_index(int i, int n) {
  if (n <= 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * (n - 1) - i;
  }
  return i;
}

// ---- affine warps -------------------------------------------------------------------------------------
// Output pixel (y, x) of every channel from source pixel (yin, xin), black outside the image; `quantize`
// truncates to 8 bits as PIL's path does.
template <typename T>
RTOOL_HD void put_pixel(const T* src, T* dst, int64_t C, int64_t H, int64_t W, int64_t y, int64_t x, int xin, int yin,
                  bool quantize) {
  const bool inside = xin >= 0 && xin < W && yin >= 0 && yin < H;
  for (int64_t c = 0; c < C; ++c) {
    T v = inside ? src[(c * H + yin) * W + xin] : T(0);
    if (quantize) v = static_cast<T>(static_cast<int>(v * T(255))) / T(255);
    dst[(c * H + y) * W + x] = v;
  }
}

}  // namespace rtool::corrupt
