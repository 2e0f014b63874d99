#pragma once
// Per-face and per-pixel arithmetic shared by the CPU and CUDA kernels, so both give the same bits.
// Screen frame: pixel x = 0.5 * (ndc_x * S + S - 1), pixel y = 0.5 * (ndc_y * S + S - 1) (y up);
// pixel (row i, col j) has its centre at (x, y) = (j, S - 1 - i).
#include <cstdint>

#ifdef __CUDACC__
#define RTOOL_RASTER_HD __host__ __device__ __forceinline__
#else
#define RTOOL_RASTER_HD inline
#endif

namespace rtool::raster {

inline constexpr int64_t kTile = 16;  // CPU tile side in pixels

template <typename T>
struct ScreenFace {
  T x[3], y[3], inv_z[3];
  T area2;     // twice the signed screen area; > 0 for counter-clockwise (camera-facing) faces
  bool drawn;  // false: culled, degenerate, behind the camera or non-finite
};

template <typename T>
RTOOL_RASTER_HD T to_pixel(T ndc, int64_t size) {
  return T(0.5) * (ndc * T(size) + T(size) - T(1));
}

// vertices: [V, 3] of one view (ndc x, ndc y, camera depth z); face: 3 vertex ids.
template <typename T>
RTOOL_RASTER_HD ScreenFace<T> screen_face(const T* vertices, const int64_t* face, int64_t size, bool cull) {
  ScreenFace<T> f;
  bool ok = true;
  for (int k = 0; k < 3; ++k) {
    const T* v = vertices + 3 * face[k];
    f.x[k] = to_pixel(v[0], size);
    f.y[k] = to_pixel(v[1], size);
    ok = ok && v[2] > T(0) && f.x[k] == f.x[k] && f.y[k] == f.y[k];
    f.inv_z[k] = T(1) / v[2];
  }
  f.area2 = (f.x[1] - f.x[0]) * (f.y[2] - f.y[0]) - (f.y[1] - f.y[0]) * (f.x[2] - f.x[0]);
  f.drawn = ok && f.area2 == f.area2 && f.area2 != T(0) && !(cull && f.area2 < T(0));
  return f;
}

// Screen-space barycentrics of pixel centre (px, py); true when inside (edges included).
template <typename T>
RTOOL_RASTER_HD bool barycentrics(const ScreenFace<T>& f, T px, T py, T* w) {
  w[0] = ((f.x[1] - px) * (f.y[2] - py) - (f.x[2] - px) * (f.y[1] - py)) / f.area2;
  w[1] = ((f.x[2] - px) * (f.y[0] - py) - (f.x[0] - px) * (f.y[2] - py)) / f.area2;
  w[2] = ((f.x[0] - px) * (f.y[1] - py) - (f.x[1] - px) * (f.y[0] - py)) / f.area2;
  return w[0] >= T(0) && w[1] >= T(0) && w[2] >= T(0);
}

// One output pixel of a supersampled image: the mean over a k x k block of samples (face ids with row stride
// `stride`, -1 = background, colour 0) of `color[f * channels]`, summed row by row from 0 and divided by
// k * k, the order and rounding of F.avg_pool2d, so the image equals rasterize + avg_pool2d bit for bit.
template <typename T>
RTOOL_RASTER_HD T block_mean(const int64_t* ids, int64_t stride, int64_t k, const T* color, int64_t channels) {
  T sum = T(0);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t f = ids[i * stride + j];
      sum += f < 0 ? T(0) : color[f * channels];
    }
  return sum / T(k * k);
}

// Perspective-correct camera depth at barycentrics w.
template <typename T>
RTOOL_RASTER_HD T interpolated_depth(const ScreenFace<T>& f, const T* w) {
  return T(1) / (w[0] * f.inv_z[0] + w[1] * f.inv_z[1] + w[2] * f.inv_z[2]);
}

// Edge-aware gradient of one boundary between neighbouring pixel centres P (inside face f) and Q
// (outside it): the boundary is where the segment P->Q leaves f, on edge (a, b). `coef` is dL/d(boundary
// position along P->Q, in pixels). Writes d L / d(pixel x, y) of the edge's two vertices into
// grad[a].{x,y}, grad[b].{x,y} (local slots 0..2 = face corners) and returns false if no edge applies.
// The estimate is weighted by the edge's squared normal component along the axis (see below).
// axis 0: P, Q on one row (Q.x = P.x + dir); axis 1: on one column (Q.y = P.y + dir).
template <typename T>
RTOOL_RASTER_HD bool boundary_gradient(const ScreenFace<T>& f, T px, T py, T qx, T qy, int axis, T dir, T coef,
                                       T grad[3][2]) {
  const T sign = f.area2 > T(0) ? T(1) : T(-1);
  int exit_edge = -1;
  T exit_t = T(2);
  for (int k = 0; k < 3; ++k) {
    const int a = (k + 1) % 3, b = (k + 2) % 3;
    const T ep = sign * ((f.x[b] - f.x[a]) * (py - f.y[a]) - (f.y[b] - f.y[a]) * (px - f.x[a]));
    const T eq = sign * ((f.x[b] - f.x[a]) * (qy - f.y[a]) - (f.y[b] - f.y[a]) * (qx - f.x[a]));
    if (eq < T(0) && ep >= T(0)) {
      const T t = ep / (ep - eq);
      if (t < exit_t) {
        exit_t = t;
        exit_edge = k;
      }
    }
  }
  if (exit_edge < 0) return false;
  const int a = (exit_edge + 1) % 3, b = (exit_edge + 2) % 3;
  // u = coordinate along the axis, w = the other one; the crossing u_c = u_a + s (u_b - u_a) at w = const.
  const T ua = axis == 0 ? f.x[a] : f.y[a], ub = axis == 0 ? f.x[b] : f.y[b];
  const T wa = axis == 0 ? f.y[a] : f.x[a], wb = axis == 0 ? f.y[b] : f.x[b];
  const T w_line = axis == 0 ? py : px;
  const T dw = wb - wa;
  if (!(dw > T(1e-9) || dw < T(-1e-9))) return false;
  const T s = (w_line - wa) / dw;
  // Row pairs and column pairs each see the full swept area of an edge; weigh each by the squared normal
  // component along its axis (the weights of one edge sum to 1) so the two estimates average instead of add.
  const T du = ub - ua;
  const T weight = dw * dw / (du * du + dw * dw);
  const T g = coef * dir * weight;  // dL / du_c
  const int u_slot = axis, w_slot = 1 - axis;
  grad[a][u_slot] += g * (T(1) - s);
  grad[b][u_slot] += g * s;
  grad[a][w_slot] += g * (ub - ua) * (s - T(1)) / dw;
  grad[b][w_slot] += g * -(ub - ua) * s / dw;
  return true;
}

}  // namespace rtool::raster

namespace rtool::raster {

// Gradient of one pair of neighbouring pixels p, q (faces fp != fq, -1 = background) with respect to the
// pixel coordinates of the faces' corners: out_p[3][2] for fp's corners, out_q[3][2] for fq's. `coef` is
// sum_c (I_p - I_q) * (g_p + g_q) / 2: dL/d(boundary position along p->q). When both faces own a boundary
// between p and q (a shared edge, or two edges), each counts half.
template <typename T>
RTOOL_RASTER_HD void pair_gradient(const ScreenFace<T>* face_p, const ScreenFace<T>* face_q, T px, T py, T qx,
                                   T qy, int axis, T dir, T coef, T out_p[3][2], T out_q[3][2]) {
  for (int k = 0; k < 3; ++k) out_p[k][0] = out_p[k][1] = out_q[k][0] = out_q[k][1] = T(0);
  const bool by_p = face_p != nullptr && boundary_gradient(*face_p, px, py, qx, qy, axis, dir, coef, out_p);
  const bool by_q = face_q != nullptr && boundary_gradient(*face_q, qx, qy, px, py, axis, -dir, -coef, out_q);
  if (by_p && by_q) {
    for (int k = 0; k < 3; ++k)
      for (int c = 0; c < 2; ++c) {
        out_p[k][c] *= T(0.5);
        out_q[k][c] *= T(0.5);
      }
  }
}

}  // namespace rtool::raster
