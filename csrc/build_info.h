#pragma once

namespace rtool {
#ifdef RTOOL_WITH_CUDA
inline constexpr bool kCudaCompiled = true;
#else
inline constexpr bool kCudaCompiled = false;
#endif
}  // namespace rtool
