// One place that declares every rtool operator's schema. Kernels live in csrc/<family>/ and are
// registered there with TORCH_LIBRARY_IMPL.
#include <torch/library.h>

#include "build_info.h"

#ifdef RTOOL_PYTHON_MODULE
#include <Python.h>
#ifndef RTOOL_SOURCES_HASH
#define RTOOL_SOURCES_HASH unknown
#endif
#define RTOOL_STRINGIFY_(x) #x
#define RTOOL_STRINGIFY(x) RTOOL_STRINGIFY_(x)
// `import rtool._C` loads this shared library, which runs the static registrations below. SOURCES_HASH is the
// fingerprint of csrc/ at build time (rtool/_sources.py), so a source checkout can tell a stale build.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr && PyModule_AddStringConstant(module, "SOURCES_HASH", RTOOL_STRINGIFY(RTOOL_SOURCES_HASH)) != 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
#endif

TORCH_LIBRARY(rtool, m) {
  // Score-CAM masked inputs: rows are (image, channel) pairs; see rtool/ops/scorecam.py.
  m.def(
      "scorecam_masks(Tensor images, Tensor activations, str mode=\"parity\", "
      "Tensor? channels=None, float eps=1e-08) -> (Tensor, Tensor)");
  // Mesh rasterizer: B views of one mesh (ndc x, ndc y, depth) -> flat-coloured image, nearest face id,
  // screen barycentrics and depth per pixel; see rtool/ops/raster.py.
  m.def(
      "rasterize(Tensor vertices, Tensor faces, Tensor colors, int image_size, float near=0.1, "
      "float far=100., bool cull_backfaces=True) -> (Tensor, Tensor, Tensor, Tensor)");
  // The image alone, drawn at image_size * supersample and averaged over supersample x supersample blocks
  // (= rasterize + avg_pool2d, bit for bit), without the per-pixel buffers; not differentiable.
  m.def(
      "rasterize_image(Tensor vertices, Tensor faces, Tensor colors, int image_size, int supersample=1, "
      "float near=0.1, float far=100., bool cull_backfaces=True) -> Tensor");
  // Edge-aware gradient of rasterize's image with respect to its vertices (Kato-style boundary motion).
  m.def(
      "rasterize_backward(Tensor grad_image, Tensor image, Tensor face_index, Tensor vertices, Tensor faces, "
      "bool cull_backfaces=True) -> Tensor");
  // Whether this build carries CUDA kernels (a build-time fact, not whether a GPU is present).
  m.def("cuda_compiled() -> bool", []() { return rtool::kCudaCompiled; });
  // Corruption kernels (rtool noc); see rtool/ops/corrupt.py. None of them is differentiable.
  // Stamps (rectangles, rhombi, discs, translucent discs) drawn in order into a copy of the images.
  m.def("corrupt_stamp(Tensor images, Tensor stamps, Tensor fills) -> Tensor");
  // Counter-based per-image noise: half-normal (gaussian) or salt-and-pepper.
  m.def("corrupt_noise(Tensor images, Tensor keys, Tensor amounts, str mode) -> Tensor");
  // Repeated zero-padded 3x3 box blur blended with the image by a per-image weight.
  m.def("corrupt_box_blur(Tensor images, Tensor weights, int passes=5) -> Tensor");
  // Per-image hue shift, in PIL's 8-bit HSV (pil_exact) or torchvision's float HSV.
  m.def("corrupt_hue(Tensor images, Tensor shifts, bool pil_exact) -> Tensor");
  // Per-image nearest-neighbour affine warp with PIL's inverse coefficients and black fill.
  m.def("corrupt_affine(Tensor images, Tensor matrices, bool quantize) -> Tensor");
  // Per-image pixelate, antialiased bilinear thumbnail round trip, or crop-and-stretch.
  m.def("corrupt_resample(Tensor images, Tensor params, str mode, bool quantize) -> Tensor");
  // Per-class k nearest reference rows of each query (surprise adequacy); see rtool/ops/dsa.py.
  m.def(
      "dsa_knn(Tensor queries, Tensor refs, Tensor class_offsets, int k=1, Tensor? self_index=None, "
      "int chunk=2048) -> (Tensor, Tensor)");
  // DeepFool step: from K candidates' logit/gradient differences to the minimal L2 step, the chosen
  // candidate and its linearised distance; see rtool/ops/deepfool.py.
  m.def("deepfool_step(Tensor logit_diff, Tensor grad_diff, float step_eps=0.0001) -> (Tensor, Tensor, Tensor)");
}
