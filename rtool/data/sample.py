"""The one sample type every box dataset yields, and the box-union mask the robustness score needs."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BoxSample:
    """One image with the ground-truth boxes of the class its saliency is computed for.

    `boxes` rows are (xmin, ymin, xmax, ymax) in crop pixel coordinates, half-open: the box covers rows
    ymin <= y < ymax and columns xmin <= x < xmax. Coordinates may be negative or past the crop (parity
    mode does not clamp upper ends); `union_mask` clips them.
    """

    image: torch.Tensor  # [3, S, S] float32, normalised with the dataset's preprocessing
    label: int
    boxes: torch.Tensor  # [n, 4] int64
    key: str


@dataclass
class BoxBatch:
    """Samples stacked for a forward pass; boxes stay a list because their count varies per image."""

    images: torch.Tensor  # [B, 3, S, S]
    labels: torch.Tensor  # [B] int64
    boxes: list[torch.Tensor]
    keys: list[str]


def collate_samples(samples: list[BoxSample]) -> BoxBatch:
    """`collate_fn` for a DataLoader over any box dataset."""
    return BoxBatch(
        images=torch.stack([s.image for s in samples]),
        labels=torch.tensor([s.label for s in samples], dtype=torch.int64),
        boxes=[s.boxes for s in samples],
        keys=[s.key for s in samples],
    )


def union_mask(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bool [height, width] mask of the union of half-open boxes; negatives clamp to 0, upper ends truncate."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    for xmin, ymin, xmax, ymax in torch.as_tensor(boxes, dtype=torch.int64).reshape(-1, 4).tolist():
        # Slicing truncates upper ends at the size by itself; only negatives need clamping.
        mask[max(ymin, 0):max(ymax, 0), max(xmin, 0):max(xmax, 0)] = True
    return mask


def box_area_fraction(boxes: torch.Tensor, height: int, width: int) -> float:
    """Area of the boxes' union (inside the height x width frame) divided by height * width."""
    return union_mask(boxes, height, width).sum().item() / float(height * width)
