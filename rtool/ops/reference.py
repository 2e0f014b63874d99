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
