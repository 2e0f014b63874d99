#pragma once
// Plain-C++ interface between the tensor-facing CUDA dispatch and the .cu kernel (no torch headers).
#include <cuda_runtime.h>

#include <cstdint>

namespace rtool::deepfool {

template <typename T>
struct StepLaunch {
  const T* logit_diff;  // [batch, cands]
  const T* grad_diff;   // [batch, cands, dims]
  T* step;              // [batch, dims]
  int64_t* chosen;      // [batch]
  T* distance;          // [batch]
  int64_t batch, cands, dims;
  T step_eps;
};

// One block per sample. Returns the launch error, if any.
cudaError_t launch_deepfool_step(const StepLaunch<float>& args, cudaStream_t stream);
cudaError_t launch_deepfool_step(const StepLaunch<double>& args, cudaStream_t stream);

}  // namespace rtool::deepfool
