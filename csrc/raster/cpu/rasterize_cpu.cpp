// CPU rasterizer. Pass 1 (parallel over views): bin each drawn face into the 16x16-pixel tiles its screen
// bounding box touches. Pass 2 (parallel over view x tile): each tile walks its faces in id order and runs
// the depth test per pixel, so cost follows covered pixels and the result does not depend on threads
// (nearest depth wins, the lower face id on a tie).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../raster.h"
#include "../raster_math.h"

namespace rtool::raster {
namespace {

struct Bins {
  std::vector<int64_t> offsets;  // [tiles + 1]
  std::vector<int32_t> faces;    // face ids, tile-major, ascending within a tile
};

struct PixelBox {
  int64_t c0, c1, r0, r1;  // inclusive column and row range; empty when c0 > c1 or r0 > r1
};

template <typename T>
PixelBox pixel_box(const ScreenFace<T>& f, int64_t s) {
  const T xmin = std::min({f.x[0], f.x[1], f.x[2]}), xmax = std::max({f.x[0], f.x[1], f.x[2]});
  const T ymin = std::min({f.y[0], f.y[1], f.y[2]}), ymax = std::max({f.y[0], f.y[1], f.y[2]});
  // Clamp in floating point first so huge coordinates never overflow the integer casts.
  const int64_t c0 = static_cast<int64_t>(std::ceil(std::clamp(xmin, T(-1), T(s))));
  const int64_t c1 = static_cast<int64_t>(std::floor(std::clamp(xmax, T(-1), T(s))));
  const int64_t y0 = static_cast<int64_t>(std::ceil(std::clamp(ymin, T(-1), T(s))));
  const int64_t y1 = static_cast<int64_t>(std::floor(std::clamp(ymax, T(-1), T(s))));
  PixelBox box{std::max<int64_t>(c0, 0), std::min<int64_t>(c1, s - 1), std::max<int64_t>(s - 1 - y1, 0),
               std::min<int64_t>(s - 1 - y0, s - 1)};
  return box;
}

template <typename T>
void rasterize_typed(RasterProblem& p) {
  const int64_t batch = p.vertices.size(0), num_vertices = p.vertices.size(1), num_faces = p.faces.size(0);
  const int64_t s = p.size, channels = p.colors.size(2);
  const int64_t tiles_x = (s + kTile - 1) / kTile, tiles = tiles_x * tiles_x;
  if (batch == 0 || num_faces == 0) return;
  const T* vertices = p.vertices.const_data_ptr<T>();
  const int64_t* faces = p.faces.const_data_ptr<int64_t>();
  const T* colors = p.colors.const_data_ptr<T>();
  T* image = p.image.mutable_data_ptr<T>();
  int64_t* face_index = p.face_index.mutable_data_ptr<int64_t>();
  T* bary = p.bary.mutable_data_ptr<T>();
  T* depth = p.depth.mutable_data_ptr<T>();
  const T near = static_cast<T>(p.near), far = static_cast<T>(p.far);
  const bool cull = p.cull;

  std::vector<Bins> bins(batch);
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<PixelBox> boxes(num_faces);
    for (int64_t b = begin; b < end; ++b) {
      const T* view = vertices + b * num_vertices * 3;
      Bins& bin = bins[b];
      bin.offsets.assign(tiles + 1, 0);
      for (int64_t f = 0; f < num_faces; ++f) {
        const ScreenFace<T> sf = screen_face(view, faces + 3 * f, s, cull);
        PixelBox box = sf.drawn ? pixel_box(sf, s) : PixelBox{1, 0, 1, 0};
        boxes[f] = box;
        if (box.c0 > box.c1 || box.r0 > box.r1) continue;
        for (int64_t ty = box.r0 / kTile; ty <= box.r1 / kTile; ++ty)
          for (int64_t tx = box.c0 / kTile; tx <= box.c1 / kTile; ++tx) ++bin.offsets[ty * tiles_x + tx + 1];
      }
      for (int64_t t = 0; t < tiles; ++t) bin.offsets[t + 1] += bin.offsets[t];
      bin.faces.resize(bin.offsets[tiles]);
      std::vector<int64_t> cursor(bin.offsets.begin(), bin.offsets.end() - 1);
      for (int64_t f = 0; f < num_faces; ++f) {
        const PixelBox& box = boxes[f];
        if (box.c0 > box.c1 || box.r0 > box.r1) continue;
        for (int64_t ty = box.r0 / kTile; ty <= box.r1 / kTile; ++ty)
          for (int64_t tx = box.c0 / kTile; tx <= box.c1 / kTile; ++tx)
            bin.faces[cursor[ty * tiles_x + tx]++] = static_cast<int32_t>(f);
      }
    }
  });

  at::parallel_for(0, batch * tiles, 1, [&](int64_t begin, int64_t end) {
    T best[kTile * kTile];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / tiles, t = task % tiles;
      const Bins& bin = bins[b];
      if (bin.offsets[t] == bin.offsets[t + 1]) continue;
      const int64_t row0 = (t / tiles_x) * kTile, col0 = (t % tiles_x) * kTile;
      const int64_t row1 = std::min(row0 + kTile, s), col1 = std::min(col0 + kTile, s);
      const T* view = vertices + b * num_vertices * 3;
      std::fill(best, best + kTile * kTile, std::numeric_limits<T>::infinity());
      int64_t* ids = face_index + b * s * s;
      T* bar = bary + b * s * s * 3;
      T* dep = depth + b * s * s;
      for (int64_t k = bin.offsets[t]; k < bin.offsets[t + 1]; ++k) {
        const int64_t f = bin.faces[k];
        const ScreenFace<T> sf = screen_face(view, faces + 3 * f, s, cull);
        const PixelBox box = pixel_box(sf, s);
        const int64_t r_lo = std::max(box.r0, row0), r_hi = std::min(box.r1 + 1, row1);
        const int64_t c_lo = std::max(box.c0, col0), c_hi = std::min(box.c1 + 1, col1);
        for (int64_t r = r_lo; r < r_hi; ++r) {
          const T py = T(s - 1 - r);
          for (int64_t c = c_lo; c < c_hi; ++c) {
            T w[3];
            if (!barycentrics(sf, T(c), py, w)) continue;
            const T z = interpolated_depth(sf, w);
            if (!(z >= near && z <= far)) continue;
            T& slot = best[(r - row0) * kTile + (c - col0)];
            if (z < slot) {
              slot = z;
              const int64_t pix = r * s + c;
              ids[pix] = f;
              dep[pix] = z;
              bar[3 * pix] = w[0];
              bar[3 * pix + 1] = w[1];
              bar[3 * pix + 2] = w[2];
            }
          }
        }
      }
      T* img = image + b * channels * s * s;
      const T* col = colors + b * num_faces * channels;
      for (int64_t r = row0; r < row1; ++r)
        for (int64_t c = col0; c < col1; ++c) {
          const int64_t f = ids[r * s + c];
          if (f < 0) continue;
          for (int64_t ch = 0; ch < channels; ++ch) img[(ch * s + r) * s + c] = col[f * channels + ch];
        }
    }
  });
}

}  // namespace

void rasterize_cpu_kernel(RasterProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.vertices.scalar_type(), "rasterize_cpu", [&] { rasterize_typed<scalar_t>(problem); });
}

}  // namespace rtool::raster
