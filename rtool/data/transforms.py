"""Image and box preprocessing: the authors' parity recipe and the corrected (model's own) eval transform.

Both resize the shorter side, centre-crop and normalise the image the same way (torchvision), and differ
in the statistics and in how the ground-truth boxes follow the image into the crop:

- parity (spec robustness_score.md section 2): the authors' integer recipe -- scale and truncate with
  int(), subtract the *floored* crop offset, clamp negatives to 0, leave upper ends unclamped.
- corrected: scale by the true resize factors, subtract torchvision's CenterCrop offset
  int(round((new - crop) / 2.0)), round to the nearest pixel edge and clip to the crop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from rtool.errors import UsageError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(new_width, new_height) after resizing the shorter side to `size`, as torchvision's Resize(int)."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def center_crop_offset(new: int, crop: int) -> int:
    """Offset of torchvision's CenterCrop along one side (negative when it pads a too-small image)."""
    if crop > new:
        return -((crop - new) // 2)
    return int(round((new - crop) / 2.0))


@dataclass(frozen=True)
class Preprocess:
    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    parity: bool = False
    interpolation: InterpolationMode = InterpolationMode.BILINEAR

    def __post_init__(self) -> None:
        for name in ("resize", "crop"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise UsageError(f"preprocess {name}={value!r}: expected a positive integer")
        for name in ("mean", "std"):
            value = tuple(float(v) for v in getattr(self, name))
            if len(value) != 3:
                raise UsageError(f"preprocess {name}={value!r}: expected 3 values (R, G, B)")
            object.__setattr__(self, name, value)
        if min(self.std) <= 0:
            raise UsageError(f"preprocess std={self.std!r}: expected positive values")

    @classmethod
    def for_parity(cls, size: int) -> "Preprocess":
        """The authors' pipeline: Resize(S) -> CenterCrop(S), CIFAR-10 statistics, integer box recipe."""
        return cls(resize=size, crop=size, mean=CIFAR10_MEAN, std=CIFAR10_STD, parity=True)

    @classmethod
    def corrected(cls, resize: int = 256, crop: int = 224, mean: Sequence[float] = IMAGENET_MEAN,
                  std: Sequence[float] = IMAGENET_STD,
                  interpolation: InterpolationMode = InterpolationMode.BILINEAR) -> "Preprocess":
        """The model's own eval transform with boxes mapped through the true scale and crop offset."""
        return cls(resize=resize, crop=crop, mean=tuple(mean), std=tuple(std), parity=False,
                   interpolation=interpolation)

    def apply_image(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> normalised float32 tensor [3, crop, crop]."""
        image = TF.resize(image.convert("RGB"), [self.resize], interpolation=self.interpolation)
        image = TF.center_crop(image, [self.crop])
        return TF.normalize(TF.to_tensor(image), list(self.mean), list(self.std))

    def apply_boxes(self, boxes: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Boxes [n, 4] (xmin, ymin, xmax, ymax) in the original width x height image -> int64 crop coordinates."""
        boxes = torch.as_tensor(boxes).reshape(-1, 4).tolist()
        new_w, new_h = resized_size(width, height, self.resize)
        mapped = [self._parity_box(b, width, height, new_w, new_h) if self.parity
                  else self._corrected_box(b, width, height, new_w, new_h) for b in boxes]
        return torch.tensor(mapped, dtype=torch.int64).reshape(-1, 4)

    def apply(self, image: Image.Image, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image and its boxes together (the boxes use the PIL image's own size)."""
        width, height = image.size
        return self.apply_image(image), self.apply_boxes(boxes, width, height)

    def _parity_box(self, box, width, height, new_w, new_h) -> list[int]:
        xmin, ymin, xmax, ymax = box
        # Python floats and int() (truncation toward zero) exactly as the authors' script computes them.
        xs = [int(x * new_w / width) for x in (xmin, xmax)]
        ys = [int(y * new_h / height) for y in (ymin, ymax)]
        if new_w > self.crop:
            xs = [x - (new_w - self.crop) // 2 for x in xs]
        if new_h > self.crop:
            ys = [y - (new_h - self.crop) // 2 for y in ys]
        return [max(xs[0], 0), max(ys[0], 0), max(xs[1], 0), max(ys[1], 0)]

    def _corrected_box(self, box, width, height, new_w, new_h) -> list[int]:
        left = center_crop_offset(new_w, self.crop)
        top = center_crop_offset(new_h, self.crop)

        def edge(value: float, scale: float, offset: int) -> int:
            return min(max(math.floor(value * scale - offset + 0.5), 0), self.crop)

        xmin, ymin, xmax, ymax = box
        sx, sy = new_w / width, new_h / height
        return [edge(xmin, sx, left), edge(ymin, sy, top), edge(xmax, sx, left), edge(ymax, sy, top)]
