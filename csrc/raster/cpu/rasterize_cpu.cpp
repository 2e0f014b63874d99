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

// Pass 1 for every view: the faces each `tile` x `tile` pixel block may cover, in ascending id order.
template <typename T>
std::vector<Bins> bin_faces(const T* vertices, const int64_t* faces, int64_t batch, int64_t num_vertices,
                            int64_t num_faces, int64_t s, int64_t tile, bool cull) {
  const int64_t tiles_x = (s + tile - 1) / tile, tiles = tiles_x * tiles_x;
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
        for (int64_t ty = box.r0 / tile; ty <= box.r1 / tile; ++ty)
          for (int64_t tx = box.c0 / tile; tx <= box.c1 / tile; ++tx) ++bin.offsets[ty * tiles_x + tx + 1];
      }
      for (int64_t t = 0; t < tiles; ++t) bin.offsets[t + 1] += bin.offsets[t];
      bin.faces.resize(bin.offsets[tiles]);
      std::vector<int64_t> cursor(bin.offsets.begin(), bin.offsets.end() - 1);
      for (int64_t f = 0; f < num_faces; ++f) {
        const PixelBox& box = boxes[f];
        if (box.c0 > box.c1 || box.r0 > box.r1) continue;
        for (int64_t ty = box.r0 / tile; ty <= box.r1 / tile; ++ty)
          for (int64_t tx = box.c0 / tile; tx <= box.c1 / tile; ++tx)
            bin.faces[cursor[ty * tiles_x + tx]++] = static_cast<int32_t>(f);
      }
    }
  });
  return bins;
}

struct TileRect {
  int64_t row0, row1, col0, col1;  // half-open pixel range of one tile
};

// Pass 2 for one tile: the depth test over its binned faces, in id order. `best` [tile * tile] holds the
// nearest depth so far (row-major from the tile's corner, stride `tile`); `hit(pix_in_tile, pix, f, z, w)`
// is called whenever face f becomes a pixel's nearest.
template <typename T, typename Hit>
void scan_tile(const T* view, const int64_t* faces, const Bins& bin, int64_t t, const TileRect& rect, int64_t s,
               int64_t tile, T near, T far, bool cull, T* best, Hit&& hit) {
  std::fill(best, best + tile * tile, std::numeric_limits<T>::infinity());
  for (int64_t k = bin.offsets[t]; k < bin.offsets[t + 1]; ++k) {
    const int64_t f = bin.faces[k];
    const ScreenFace<T> sf = screen_face(view, faces + 3 * f, s, cull);
    const PixelBox box = pixel_box(sf, s);
    const int64_t r_lo = std::max(box.r0, rect.row0), r_hi = std::min(box.r1 + 1, rect.row1);
    const int64_t c_lo = std::max(box.c0, rect.col0), c_hi = std::min(box.c1 + 1, rect.col1);
    for (int64_t r = r_lo; r < r_hi; ++r) {
      const T py = T(s - 1 - r);
      for (int64_t c = c_lo; c < c_hi; ++c) {
        T w[3];
        if (!barycentrics(sf, T(c), py, w)) continue;
        const T z = interpolated_depth(sf, w);
        if (!(z >= near && z <= far)) continue;
        const int64_t local = (r - rect.row0) * tile + (c - rect.col0);
        if (z < best[local]) {
          best[local] = z;
          hit(local, r * s + c, f, z, w);
        }
      }
    }
  }
}

TileRect tile_rect(int64_t t, int64_t s, int64_t tile) {
  const int64_t tiles_x = (s + tile - 1) / tile;
  const int64_t row0 = (t / tiles_x) * tile, col0 = (t % tiles_x) * tile;
  return {row0, std::min(row0 + tile, s), col0, std::min(col0 + tile, s)};
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

  const std::vector<Bins> bins = bin_faces(vertices, faces, batch, num_vertices, num_faces, s, kTile, cull);
  at::parallel_for(0, batch * tiles, 1, [&](int64_t begin, int64_t end) {
    T best[kTile * kTile];
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / tiles, t = task % tiles;
      const Bins& bin = bins[b];
      if (bin.offsets[t] == bin.offsets[t + 1]) continue;
      const TileRect rect = tile_rect(t, s, kTile);
      int64_t* ids = face_index + b * s * s;
      T* bar = bary + b * s * s * 3;
      T* dep = depth + b * s * s;
      scan_tile(vertices + b * num_vertices * 3, faces, bin, t, rect, s, kTile, near, far, cull, best,
                [&](int64_t, int64_t pix, int64_t f, T z, const T* w) {
                  ids[pix] = f;
                  dep[pix] = z;
                  bar[3 * pix] = w[0];
                  bar[3 * pix + 1] = w[1];
                  bar[3 * pix + 2] = w[2];
                });
      T* img = image + b * channels * s * s;
      const T* col = colors + b * num_faces * channels;
      for (int64_t r = rect.row0; r < rect.row1; ++r)
        for (int64_t c = rect.col0; c < rect.col1; ++c) {
          const int64_t f = ids[r * s + c];
          if (f < 0) continue;
          for (int64_t ch = 0; ch < channels; ++ch) img[(ch * s + r) * s + c] = col[f * channels + ch];
        }
    }
  });
}

// The image only, each output pixel the mean of its k x k samples: tiles are whole k x k blocks, the nearest
// face per sample stays in the tile's own buffer, and every output pixel is written (background 0).
template <typename T>
void rasterize_image_typed(RasterImageProblem& p) {
  const int64_t batch = p.vertices.size(0), num_vertices = p.vertices.size(1), num_faces = p.faces.size(0);
  const int64_t k = p.supersample, out_size = p.size, s = out_size * k, channels = p.colors.size(2);
  const int64_t tile = k * ((kTile + k - 1) / k);
  const int64_t tiles_x = (s + tile - 1) / tile, tiles = tiles_x * tiles_x;
  if (batch == 0) return;
  T* image = p.image.mutable_data_ptr<T>();
  if (num_faces == 0) {
    std::fill(image, image + p.image.numel(), T(0));
    return;
  }
  const T* vertices = p.vertices.const_data_ptr<T>();
  const int64_t* faces = p.faces.const_data_ptr<int64_t>();
  const T* colors = p.colors.const_data_ptr<T>();
  const T near = static_cast<T>(p.near), far = static_cast<T>(p.far);
  const bool cull = p.cull;

  const std::vector<Bins> bins = bin_faces(vertices, faces, batch, num_vertices, num_faces, s, tile, cull);
  at::parallel_for(0, batch * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> best(tile * tile);
    std::vector<int64_t> ids(tile * tile);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / tiles, t = task % tiles;
      const TileRect rect = tile_rect(t, s, tile);
      std::fill(ids.begin(), ids.end(), int64_t(-1));
      scan_tile(vertices + b * num_vertices * 3, faces, bins[b], t, rect, s, tile, near, far, cull, best.data(),
                [&](int64_t local, int64_t, int64_t f, T, const T*) { ids[local] = f; });
      T* img = image + b * channels * out_size * out_size;
      const T* col = colors + b * num_faces * channels;
      for (int64_t r = rect.row0; r < rect.row1; r += k)
        for (int64_t c = rect.col0; c < rect.col1; c += k) {
          const int64_t* block = ids.data() + (r - rect.row0) * tile + (c - rect.col0);
          for (int64_t ch = 0; ch < channels; ++ch)
            img[(ch * out_size + r / k) * out_size + c / k] = block_mean(block, tile, k, col + ch, channels);
        }
    }
  });
}

}  // namespace

void rasterize_cpu_kernel(RasterProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.vertices.scalar_type(), "rasterize_cpu", [&] { rasterize_typed<scalar_t>(problem); });
}

void rasterize_image_cpu_kernel(RasterImageProblem& problem) {
  AT_DISPATCH_FLOATING_TYPES(problem.vertices.scalar_type(), "rasterize_image_cpu",
                             [&] { rasterize_image_typed<scalar_t>(problem); });
}

}  // namespace rtool::raster
