"""Per-class nearest reference traces for surprise adequacy: the Python face of torch.ops.rtool.dsa_knn."""
from __future__ import annotations

import torch

from rtool.ops._library import operators_loaded, require_operators

DEFAULT_CHUNK = 2048


def dsa_knn(
    queries: torch.Tensor,
    refs: torch.Tensor,
    class_offsets: torch.Tensor,
    k: int = 1,
    self_index: torch.Tensor | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest reference rows of every query within every class block, by Euclidean distance.

    queries [Q, D] and refs [N, D], both float32 or both float64. The reference rows are sorted into
    contiguous class blocks: class c owns rows ``class_offsets[c]:class_offsets[c + 1]`` (class_offsets is
    int64 [C + 1], 0 first, N last, non-decreasing; empty blocks are allowed). ``self_index`` (int64 [Q],
    optional) names one reference row per query that must be skipped (-1 = none), e.g. the query's own
    row when the queries are the references themselves. The kernel keeps one centred copy of refs and
    visits the references block by block (``chunk`` rows per BLAS product for traces wider than 32
    features; fixed 2048-row chunks for narrower ones), so beyond the inputs and outputs the working memory
    is O(N * D + threads * 256 * chunk): no [Q, N] distance matrix is ever formed.

    Returns ``(distances, indices)``, both [Q, C, k]: distances float64 (exact: each candidate found by
    the GEMM form ||q||^2 + ||r||^2 - 2 q.r is re-ranked by its float64 distance computed from the inputs),
    ascending, ties broken by the lowest reference row; indices int64 rows of ``refs``. Where a class has
    fewer than k rows (after the skip), the remaining slots hold distance +inf and index -1. k = 1 gives
    the plain nearest row per class (see `dsa_nearest`).

    Not differentiable: the outputs are a selection (indices) and distances used as ranking statistics;
    a backward pass through this op raises a RuntimeError saying so. Compute differentiable distances
    from the returned indices if you need gradients.
    """
    require_operators("dsa_knn")
    return torch.ops.rtool.dsa_knn(queries, refs, class_offsets, k, self_index, chunk)


def dsa_nearest(
    queries: torch.Tensor,
    refs: torch.Tensor,
    class_offsets: torch.Tensor,
    self_index: torch.Tensor | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest reference row of every query per class: `dsa_knn` with k = 1, squeezed to [Q, C]."""
    distances, indices = dsa_knn(queries, refs, class_offsets, 1, self_index, chunk)
    return distances[..., 0], indices[..., 0]


if operators_loaded():

    @torch.library.register_fake("rtool::dsa_knn")
    def _dsa_knn_fake(queries, refs, class_offsets, k=1, self_index=None, chunk=DEFAULT_CHUNK):
        torch._check(queries.dim() == 2, lambda: f"queries must be 2-D, got {queries.dim()}-D")
        torch._check(refs.dim() == 2, lambda: f"refs must be 2-D, got {refs.dim()}-D")
        torch._check(class_offsets.dim() == 1, lambda: "class_offsets must be 1-D")
        torch._check(k >= 1, lambda: f"k must be >= 1, got {k}")
        shape = (queries.shape[0], class_offsets.shape[0] - 1, k)
        return (queries.new_empty(shape, dtype=torch.float64), queries.new_empty(shape, dtype=torch.int64))

    def _dsa_knn_backward(ctx, grad_distances, grad_indices):
        raise RuntimeError("rtool.dsa_knn is not differentiable; recompute the distances of the returned "
                           "indices with torch ops if you need gradients")

    torch.library.register_autograd("rtool::dsa_knn", _dsa_knn_backward)
