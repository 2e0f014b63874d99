"""Clean images for the benchmarks, in [0, 1] and unnormalised: the corruption acts on them (spec §2:
Resize -> CenterCrop -> ToTensor -> corruption -> Normalize), and `normalise` comes last, on the device.

A source gives `batch(start, stop)`: float32 [n, 3, H, W] of items start..stop-1 in a fixed order, whose
position is the dataset index the corruption parameters are keyed on.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from rtool.data.imagenet_c import LabelledImages
from rtool.engine import stable_hash
from rtool.errors import UsageError


class ImageSource:
    labels: torch.Tensor               # int64 [N]
    class_names: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __len__(self) -> int:
        return int(self.labels.numel())

    def batch(self, start: int, stop: int, workers: int = 0) -> torch.Tensor:
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
        return (images - mean) / std


class TensorImages(ImageSource):
    """Images held in memory: uint8 (value / 255) or float in [0, 1], [N, 3, H, W]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                 mean: Sequence[float], std: Sequence[float]):
        if images.ndim != 4 or images.shape[1] != 3:
            raise UsageError(f"images of shape {tuple(images.shape)}: expected [N, 3, H, W]")
        if labels.shape != (images.shape[0],):
            raise UsageError(f"labels of shape {tuple(labels.shape)}: expected ({images.shape[0]},)")
        self.images, self.labels = images, labels.long()
        self.class_names = list(class_names)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self._fingerprint: str | None = None

    def batch(self, start: int, stop: int, workers: int = 0) -> torch.Tensor:
        part = self.images[start:stop]
        return part.float() / 255 if part.dtype == torch.uint8 else part.float()

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256(repr((tuple(self.images.shape), str(self.images.dtype))).encode())
            digest.update(self.images.contiguous().cpu().numpy().tobytes())
            digest.update(self.labels.cpu().numpy().tobytes())
            self._fingerprint = stable_hash([digest.hexdigest(), self.mean, self.std])
        return self._fingerprint


@dataclass(frozen=True)
class Crop:
    """Resize the shorter side (None: keep the size), then centre-crop to `crop` x `crop`."""

    resize: int | None
    crop: int
    interpolation: str = "bilinear"

    def __call__(self, image) -> torch.Tensor:
        if self.resize is not None:
            image = TF.resize(image, [self.resize], interpolation=InterpolationMode(self.interpolation))
        return TF.to_tensor(TF.center_crop(image, [self.crop]))


class _Decoded(Dataset):
    def __init__(self, files: LabelledImages, crop: Crop, start: int, stop: int):
        self.files, self.crop, self.start, self.stop = files, crop, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.crop(self.files.load(self.start + i))


class FileImages(ImageSource):
    """Image files decoded on demand (optionally by DataLoader worker processes)."""

    def __init__(self, files: LabelledImages, crop: Crop, mean: Sequence[float], std: Sequence[float]):
        self.files, self.crop = files, crop
        self.labels = torch.tensor(files.labels, dtype=torch.int64)
        self.class_names = list(files.class_names)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        self._fingerprint: str | None = None

    def batch(self, start: int, stop: int, workers: int = 0) -> torch.Tensor:
        decoded = _Decoded(self.files, self.crop, start, stop)
        if workers == 0 or len(decoded) < 2:
            return torch.stack([decoded[i] for i in range(len(decoded))])
        chunk = max(1, math.ceil(len(decoded) / (4 * workers)))
        loader = DataLoader(decoded, batch_size=chunk, num_workers=workers, shuffle=False)
        return torch.cat(list(loader))

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = stable_hash([self.files.fingerprint(), repr(self.crop), self.mean, self.std])
        return self._fingerprint
