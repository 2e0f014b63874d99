"""Corner-case selection from the DSA3 scores of several models (spec §A.6), with a deterministic tie-break.

Each model nominates its `per_model_k` highest-scoring samples; the nominations of all models are pooled
and the `k` most often nominated samples are the corner cases. The reference code breaks ties in the
count by first appearance, which depends on a directory listing; here ties are broken by the mean rank
in the models' lists (smaller = nominated higher), then by the lower sample index.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rtool.errors import UsageError

TIE_BREAK = "count desc, mean rank asc, index asc"
DEFAULT_CORNER_K = 200


@dataclass(frozen=True)
class CornerCases:
    """The selected corner cases and the numbers behind the choice.

    indices [n] int64: the selected samples, most often nominated first (n = k, or fewer when the models
    nominated fewer than k distinct samples); counts [n]: how many models nominated each; mean_rank [n]
    float64: its mean 0-based position in the lists of the models that nominated it; kept [N - n] int64:
    every other sample index, ascending (the training set without the corner cases).
    """

    indices: torch.Tensor
    counts: torch.Tensor
    mean_rank: torch.Tensor
    kept: torch.Tensor
    k: int
    per_model_k: int
    num_models: int
    num_samples: int
    tie_break: str = TIE_BREAK


def _as_matrix(scores) -> np.ndarray:
    matrix = np.asarray(torch.as_tensor(scores).detach().cpu().double().numpy())
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise UsageError(f"scores must be [M models, N samples] with M, N >= 1, got shape {tuple(matrix.shape)}")
    return matrix


def _check_count(value: int, limit: int, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or not 1 <= value <= limit:
        raise UsageError(f"{what} must be an integer in [1, {limit}] (the number of samples), got {value}")
    return int(value)


def top_k_per_model(scores, k: int) -> torch.Tensor:
    """[M, k] int64: each model's k highest-scoring sample indices, by (score desc, index asc), NaN last."""
    matrix = _as_matrix(scores)
    k = _check_count(k, matrix.shape[1], "k")
    index = np.arange(matrix.shape[1])
    rows = []
    for row in matrix:
        missing = np.isnan(row)
        order = np.lexsort((index, -np.where(missing, 0.0, row), missing))
        rows.append(order[:k])
    return torch.from_numpy(np.stack(rows).astype(np.int64))


def select_corner_cases(scores, k: int = DEFAULT_CORNER_K, per_model_k: int | None = None) -> CornerCases:
    """Corner cases from `scores` [M, N] (one row of DSA3 per model; a 1-D vector is one model).

    per_model_k (default k) samples per model are nominated; the k most nominated are returned, ties
    broken by `TIE_BREAK`.
    """
    matrix = _as_matrix(scores)
    num_models, num_samples = matrix.shape
    k = _check_count(k, num_samples, "k")
    per_model_k = _check_count(k if per_model_k is None else per_model_k, num_samples, "per_model_k")
    nominated = top_k_per_model(matrix, per_model_k).numpy()
    positions = np.broadcast_to(np.arange(per_model_k), nominated.shape)
    counts = np.bincount(nominated.ravel(), minlength=num_samples)
    rank_sums = np.bincount(nominated.ravel(), weights=positions.ravel().astype(np.float64), minlength=num_samples)
    pooled = np.nonzero(counts)[0]
    mean_rank = rank_sums[pooled] / counts[pooled]
    order = np.lexsort((pooled, mean_rank, -counts[pooled]))[:k]
    chosen = pooled[order]
    kept = np.setdiff1d(np.arange(num_samples), chosen)
    return CornerCases(
        indices=torch.from_numpy(chosen.astype(np.int64)),
        counts=torch.from_numpy(counts[chosen].astype(np.int64)),
        mean_rank=torch.from_numpy(mean_rank[order]),
        kept=torch.from_numpy(kept.astype(np.int64)),
        k=k,
        per_model_k=per_model_k,
        num_models=num_models,
        num_samples=num_samples,
    )


__all__ = ["DEFAULT_CORNER_K", "TIE_BREAK", "CornerCases", "select_corner_cases", "top_k_per_model"]
