// CPU backward of the rasterizer: edge-aware gradients with respect to the projected vertices. Every pair
// of neighbouring pixels with different faces marks a boundary; moving it by one pixel turns one pixel
// from one colour into the other, so dL/d(boundary) = sum_c (I_p - I_q) (g_p + g_q) / 2, which flows to
// the owning edge's two vertices through the crossing point (see raster_math.h). Views run in parallel,
// pixels in a fixed order within a view, so the sums are deterministic.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../raster.h"
#include "../raster_math.h"

namespace rtool::raster {
namespace {

template <typename T>
void backward_typed(RasterBackwardProblem& p) {
  const int64_t batch = p.vertices.size(0), num_vertices = p.vertices.size(1);
  const int64_t channels = p.image.size(1), s = p.image.size(2);
  const T* vertices = p.vertices.const_data_ptr<T>();
  const int64_t* faces = p.faces.const_data_ptr<int64_t>();
  const T* image = p.image.const_data_ptr<T>();
  const T* grad_image = p.grad_image.const_data_ptr<T>();
  const int64_t* face_index = p.face_index.const_data_ptr<int64_t>();
  T* grad = p.grad_vertices.mutable_data_ptr<T>();
  const bool cull = p.cull;
  const T half_s = T(0.5) * T(s);

  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const T* view = vertices + b * num_vertices * 3;
      const int64_t* ids = face_index + b * s * s;
      const T* img = image + b * channels * s * s;
      const T* gimg = grad_image + b * channels * s * s;
      T* gview = grad + b * num_vertices * 3;
      auto add = [&](int64_t f, T out[3][2]) {
        for (int k = 0; k < 3; ++k) {
          const int64_t v = faces[3 * f + k];
          gview[3 * v] += out[k][0] * half_s;
          gview[3 * v + 1] += out[k][1] * half_s;
        }
      };
      for (int64_t r = 0; r < s; ++r)
        for (int64_t c = 0; c < s; ++c)
          for (int axis = 0; axis < 2; ++axis) {
            const int64_t r2 = r + axis, c2 = c + (1 - axis);
            if (r2 >= s || c2 >= s) continue;
            const int64_t fp = ids[r * s + c], fq = ids[r2 * s + c2];
            if (fp == fq) continue;
            T coef = T(0);
            for (int64_t ch = 0; ch < channels; ++ch) {
              const int64_t ip = (ch * s + r) * s + c, iq = (ch * s + r2) * s + c2;
              coef += (img[ip] - img[iq]) * T(0.5) * (gimg[ip] + gimg[iq]);
            }
            if (coef == T(0)) continue;
            ScreenFace<T> sp, sq;
            if (fp >= 0) sp = screen_face(view, faces + 3 * fp, s, cull);
            if (fq >= 0) sq = screen_face(view, faces + 3 * fq, s, cull);
            const T px = T(c), py = T(s - 1 - r), qx = T(c2), qy = T(s - 1 - r2);
            // Horizontal pair: q is one pixel right (+x); vertical pair: q is one row down (-y).
            const T dir = axis == 0 ? T(1) : T(-1);
            T out_p[3][2], out_q[3][2];
            pair_gradient(fp >= 0 ? &sp : nullptr, fq >= 0 ? &sq : nullptr, px, py, qx, qy, axis, dir, coef, out_p,
                          out_q);
            if (fp >= 0) add(fp, out_p);
            if (fq >= 0) add(fq, out_q);
          }
    }
  });
}

}  // namespace

void rasterize_backward_cpu_kernel(RasterBackwardProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.vertices.scalar_type(), "rasterize_backward_cpu",
                             [&] { backward_typed<scalar_t>(problem); });
}

}  // namespace rtool::raster
