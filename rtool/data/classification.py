"""The in-memory classification data every classification loader returns (`digits`, `mnist`, `cifar10`, `folder`).

Protocol (`ClassificationData`):
- `images`: float32 tensor [N, C, H, W], values in [0, 1], no mean/std normalisation (the corner-case
  ConvNet is trained on raw [0, 1] pixels); `normalized(mean, std)` gives the input of a model that wants it.
- `labels`: int64 tensor [N], each in 0..len(class_names)-1.
- `class_names`: one name per class; a label is an index into it.
- `name`: the dataset (`"digits"`, `"mnist"`, `"cifar10"`, `"folder"`); `split`: `"train"` or `"test"`;
  `source`: where it came from (a path, or the scikit-learn dataset), for people to read.
- `indices`: int64 [N], each sample's position in the full split as loaded (0..N-1 for a fresh load),
  kept through `subset`, so corner-case indices always refer to the original dataset order.
- `skipped`: (key, reason) of every input left out while loading (unreadable images of a folder).

Order is the dataset's own order (file order for IDX and CIFAR batches, class then file name for a folder),
never shuffled. `fingerprint()` hashes the pixels and labels, so a cache key can name the exact training data
(a subset without the corner cases gets its own fingerprint). `dataset()` is a torch `Dataset` view
yielding `(image, label)` pairs for a `DataLoader`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from rtool.errors import UsageError

SPLITS = ("train", "test")


@dataclass(eq=False)
class ClassificationData:
    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    name: str
    split: str
    source: str = ""
    indices: torch.Tensor | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != torch.float32:
            raise UsageError(f"{self.name} images: expected float32 [N, C, H, W], got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        n = self.images.shape[0]
        if self.labels.ndim != 1 or self.labels.shape[0] != n or self.labels.dtype != torch.int64:
            raise UsageError(f"{self.name} labels: expected int64 [{n}], got {self.labels.dtype} {tuple(self.labels.shape)}")
        if n and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise UsageError(f"{self.name} labels: expected values in 0..{len(self.class_names) - 1}, got "
                             f"{int(self.labels.min())}..{int(self.labels.max())}")
        if self.indices is None:
            self.indices = torch.arange(n, dtype=torch.int64)
        elif self.indices.shape != (n,):
            raise UsageError(f"{self.name} indices: expected shape ({n},), got {tuple(self.indices.shape)}")
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, indices) -> ClassificationData:
        """The samples at positions `indices` of this data (in that order); `indices` keeps their original ids."""
        index = _positions(indices, self.name)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise UsageError(f"{self.name} subset: indices must lie in 0..{len(self) - 1}, got "
                             f"{int(index.min())}..{int(index.max())}")
        return ClassificationData(images=self.images[index], labels=self.labels[index],
                                  class_names=list(self.class_names), name=self.name, split=self.split,
                                  source=self.source, indices=self.indices[index], skipped=list(self.skipped))

    def normalized(self, mean, std) -> ClassificationData:
        """A copy with images (x - mean) / std per channel: the input of a model trained on normalised images
        (torchvision's ImageNet weights). The result no longer lies in [0, 1]; its `name` is unchanged."""
        channels = self.images.shape[1]
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean_t.numel() != channels or std_t.numel() != channels or not bool((std_t > 0).all()):
            raise UsageError(f"{self.name} normalisation: expected {channels} means and {channels} positive stds, "
                             f"got {mean_t.tolist()} and {std_t.tolist()}")
        images = (self.images - mean_t.view(1, -1, 1, 1)) / std_t.view(1, -1, 1, 1)
        return ClassificationData(images=images, labels=self.labels, class_names=list(self.class_names),
                                  name=self.name, split=self.split, source=self.source, indices=self.indices,
                                  skipped=list(self.skipped))

    def without(self, indices) -> ClassificationData:
        """All samples except those at positions `indices` (order kept): the corner-case removal."""
        keep = torch.ones(len(self), dtype=torch.bool)
        drop = _positions(indices, self.name)
        if drop.numel() and (int(drop.min()) < 0 or int(drop.max()) >= len(self)):
            raise UsageError(f"{self.name} without: indices must lie in 0..{len(self) - 1}, got "
                             f"{int(drop.min())}..{int(drop.max())}")
        keep[drop] = False
        return self.subset(torch.nonzero(keep).flatten())

    def fingerprint(self) -> str:
        """sha256 (16 hex digits) of the image shape, pixels, labels and class names: names the exact data."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(repr((tuple(self.images.shape), list(self.class_names))).encode())
            digest.update(self.images.contiguous().numpy().tobytes())
            digest.update(self.labels.contiguous().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def dataset(self) -> ClassificationDataset:
        return ClassificationDataset(self)

    def describe(self) -> str:
        c, h, w = self.image_shape
        return f"{self.name} {self.split}: {len(self)} images {c}x{h}x{w}, {self.num_classes} classes ({self.source})"


class ClassificationDataset(Dataset):
    """A torch `Dataset` over a `ClassificationData`: item i is (image [C, H, W] float32, label int)."""

    def __init__(self, data: ClassificationData) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.data.images[index], int(self.data.labels[index])


def _positions(indices, name: str) -> torch.Tensor:
    array = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise UsageError(f"{name} positions of dtype {array.dtype}: expected integer positions (not a mask)")
    return torch.as_tensor(array.astype(np.int64, copy=False)).reshape(-1)


def check_split(split: str, name: str) -> str:
    if split not in SPLITS:
        raise UsageError(f"{name} split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def to_unit_float(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels (any shape) → float32 tensor in [0, 1] (value / 255, as torchvision's ToTensor)."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(torch.float32).div_(255.0)
