"""Plain-PyTorch versions of every rtool operator: the oracle for tests and the baseline for benchmarks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

CONSTANT_RANGE_TOLERANCE = 1e-6  # same as kConstantRangeTolerance in csrc/scorecam/bilinear.h


def _rows(batch: int, num_channels: int, channels: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    if channels is None:
        images = torch.arange(batch, device=device).repeat_interleave(num_channels)
        chans = torch.arange(num_channels, device=device).repeat(batch)
    elif channels.dim() == 1:
        images = torch.arange(batch, device=device).repeat_interleave(channels.numel())
        chans = channels.repeat(batch)
    else:
        images, chans = channels[:, 0], channels[:, 1]
    return images, chans


def scorecam_masks_ref(
    images: torch.Tensor,
    activations: torch.Tensor,
    mode: str = "parity",
    channels: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for rtool.ops.scorecam_masks: F.interpolate, per-map range, broadcast multiply."""
    batch, num_channels = activations.shape[:2]
    row_image, row_channel = _rows(batch, num_channels, channels, images.device)
    maps = activations.float()
    if mode == "parity":
        maps = maps.relu()
    up = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
    up = up[row_image, row_channel]  # [rows, H, W]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    ranges = hi - lo
    # A constant map resamples to float noise (weights that do not sum to exactly 1): call it range 0,
    # as the kernels do.
    ranges = torch.where(ranges <= CONSTANT_RANGE_TOLERANCE * torch.maximum(hi, -lo), torch.zeros_like(ranges), ranges)
    if mode == "parity":
        mask = up / torch.where(ranges > 0, ranges, torch.ones_like(ranges))
    elif mode == "minmax":
        mask = torch.where(ranges > 0, (up - lo) / (ranges + eps), torch.zeros_like(up))
    else:
        raise ValueError(f"mode must be 'parity' or 'minmax', got {mode!r}")
    masked = (images[row_image].float() * mask[:, None]).to(images.dtype)
    return masked, ranges.reshape(-1)


# ---------------------------------------------------------------------------------------------------------
# dsa: per-class k nearest reference rows (surprise adequacy)
# ---------------------------------------------------------------------------------------------------------


def dsa_knn_ref(
    queries: torch.Tensor,
    refs: torch.Tensor,
    class_offsets: torch.Tensor,
    k: int = 1,
    self_index: torch.Tensor | None = None,
    chunk: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for rtool.ops.dsa_knn: direct float64 differences, a stable sort per class block.

    `chunk` bounds the queries handled at once (the [chunk, N, D] difference tensor is the memory cost).
    """
    num_queries, num_classes = queries.shape[0], class_offsets.numel() - 1
    offsets = [int(v) for v in class_offsets.tolist()]
    q64, r64 = queries.double(), refs.double()
    distances = torch.full((num_queries, num_classes, k), float("inf"), dtype=torch.float64, device=queries.device)
    indices = torch.full((num_queries, num_classes, k), -1, dtype=torch.long, device=queries.device)
    rows = torch.arange(refs.shape[0], device=queries.device)
    step = max(1, int(chunk))
    for q0 in range(0, num_queries, step):
        q = q64[q0:q0 + step]
        squared = ((q[:, None, :] - r64[None, :, :]) ** 2).sum(-1)  # [q, N]
        if self_index is not None:
            skip = self_index[q0:q0 + step]
            squared = torch.where(rows[None, :] == skip[:, None], torch.inf, squared)
        for c in range(num_classes):
            lo, hi = offsets[c], offsets[c + 1]
            block = squared[:, lo:hi]
            order = torch.sort(block, dim=1, stable=True).indices[:, :k]
            taken = torch.gather(block, 1, order)
            found = torch.isfinite(taken)
            width = order.shape[1]
            distances[q0:q0 + step, c, :width] = torch.where(found, taken.sqrt(), torch.inf)
            indices[q0:q0 + step, c, :width] = torch.where(found, order + lo, -1)
    return distances, indices


# ---------------------------------------------------------------------------------------------------------------------
# DeepFool (rtool.ops.deepfool_step)
# ---------------------------------------------------------------------------------------------------------------------


def deepfool_step_ref(
    logit_diff: torch.Tensor, grad_diff: torch.Tensor, step_eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference for rtool.ops.deepfool_step: norms, ratios with zero norms at +inf, first argmin, step."""
    batch, _, dims = grad_diff.shape
    norms = torch.linalg.vector_norm(grad_diff.double(), dim=2).to(grad_diff.dtype)  # [B, K]
    ratios = logit_diff.abs() / norms
    # Zero norms and NaN ratios are never chosen; torch.argmin returns the first minimum.
    ratios = torch.where((norms > 0) & ~ratios.isnan(), ratios, torch.full_like(ratios, float("inf")))
    if ratios.shape[1] == 0:
        chosen = torch.full((batch,), -1, dtype=torch.long, device=grad_diff.device)
        return grad_diff.new_zeros((batch, dims)), chosen, logit_diff.new_full((batch,), float("inf"))
    best = ratios.argmin(dim=1)
    distance = ratios.gather(1, best[:, None])[:, 0]
    found = distance.isfinite()
    chosen = torch.where(found, best, torch.full_like(best, -1))
    rows = torch.arange(batch, device=grad_diff.device)
    w = grad_diff[rows, best]  # [B, D]
    norm = norms[rows, best]
    scale = torch.where(found, (distance + step_eps) / norm, torch.zeros_like(norm))
    step = torch.where(found[:, None], scale[:, None] * w, torch.zeros_like(w))
    distance = torch.where(found, distance, torch.full_like(distance, float("inf")))
    return step, chosen, distance
