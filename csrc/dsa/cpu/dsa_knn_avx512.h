#pragma once
// The AVX-512 scan of dsa_knn for narrow traces: one pass over each class's rows per block of queries, with no
// stored distances (see dsa_knn_avx512.cpp).
#include <cstdint>

namespace rtool::dsa::avx512 {

constexpr int64_t kMaxDim = 32;  // widest trace the scan is compiled for

// Everything the scan reads and writes. Distances are computed on data centred on the reference mean.
template <typename T>
struct NarrowScan {
  int64_t dim, num_refs, num_classes, k;
  const int64_t* offsets;     // [C + 1] class blocks of the reference rows
  const int64_t* skip;        // [Q] the row query q leaves out, or -1
  const T* queries;           // [Q, dim] as given (for the exact re-rank)
  const T* refs;              // [N, dim] as given
  const T* mean;              // [dim] the centring
  const T* centred_t;         // [dim, N] centred refs, transposed
  const T* rsq;               // [N] squared norms of the centred refs
  const double* class_reach;  // [C] largest norm of a finite centred ref of each class
  double slack;               // |approx - exact| <= slack * (|q| + |r|)^2
  double* out_dist;           // [Q, C, k]
  int64_t* out_index;         // [Q, C, k]
};

// True where this CPU runs the scan (AVX-512 F/DQ/BW/VL) and RTOOL_DSA_PORTABLE is not set to a non-empty value.
bool usable();

// The k nearest rows of every class for queries [q0, q0 + qn), written to the outputs; qn <= kBlock.
template <typename T>
void scan_block(const NarrowScan<T>& scan, int64_t q0, int64_t qn);

constexpr int64_t kBlock = 32;  // queries per scan_block call

}  // namespace rtool::dsa::avx512
