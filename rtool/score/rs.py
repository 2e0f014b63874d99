"""The robustness score of one image: the share of saliency energy inside the ground-truth boxes."""
from __future__ import annotations

import torch

from rtool.data.sample import union_mask


def box_masks(boxes: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Bool [B, H, W]: the union of each image's boxes (negatives clamped, upper ends truncated)."""
    if not boxes:
        return torch.zeros(0, height, width, dtype=torch.bool)
    return torch.stack([union_mask(b, height, width) for b in boxes])


def robustness_scores(maps: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
    """RS [B] = sum of the map inside the union of the boxes / sum of the whole map (spec §1).

    maps [B, H, W] in [0, 1] (clamped to <= 1 first, as the authors do); RS = 0 where the denominator is 0
    or NaN (a constant map normalised without epsilon), so such an image counts, as zero, in its class mean.
    """
    if maps.dim() != 3 or maps.shape[0] != len(boxes):
        raise ValueError(f"maps must be [B, H, W] with one box set per map, got {tuple(maps.shape)} and {len(boxes)}")
    maps = maps.float().clamp(max=1.0)
    inside = box_masks(boxes, maps.shape[1], maps.shape[2]).to(maps.device)
    total = maps.sum(dim=(1, 2))
    in_box = (maps * inside).sum(dim=(1, 2))
    scores = in_box / total
    valid = torch.isfinite(scores) & (total != 0)
    return torch.where(valid, scores, torch.zeros_like(scores)).cpu()


def area_fractions(boxes: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
    """Share of the image covered by each image's box union [B] (for the size-adjusted score)."""
    return box_masks(boxes, height, width).float().mean(dim=(1, 2))
