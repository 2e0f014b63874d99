"""The embedded `shapes` dataset: drawn objects with exact boxes, some classes with a planted background cue.

Recipe from specs/shapes.md: 10 shape classes, one anti-aliased object per image (4x supersampled),
random centre/rotation/colour, box side 0.35-0.55 of the image, backgrounds from a shared pool (flat,
gradient, blobs, noise). Images of the planted classes get sharp two-colour stripes of period 6 px
behind the object instead, one orientation per planted class (0, 60, 120 degrees for three classes,
+-5 degrees jitter), with probability `cue_probability`. `rtool score` must rank exactly those classes lowest.

Random streams are separate per purpose (object geometry, object colour, pool background, cue), seeded
by (seed, split), so the `cue="none"` / `cue="swap"` probe variants of a split show the very same
objects on the very same pool backgrounds as the plain split; only the cue changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rtool.data.annotations import AnnotatedObject, write_voc_xml
from rtool.data.sample import BoxSample
from rtool.data.shapes_draw import (BACKGROUND_KINDS, SHAPE_NAMES, background, place_shape, rasterise, stripes,
                                    tight_box)
from rtool.errors import UsageError

SPLITS = {"train": 0, "val": 1}
CUE_MODES = ("planted", "none", "swap")
_COLOUR_TRIES = 8
_MIN_CONTRAST = 60.0  # RGB distance (0..441) between the object and most of the background under it
_MIN_STRIPE_CONTRAST = 100.0
_ORIENTATION_JITTER_DEG = 5.0
_SIDE_RANGE = (0.35, 0.55)


@dataclass(frozen=True)
class ShapesConfig:
    n_train_per_class: int = 600
    n_val_per_class: int = 50
    image_size: int = 64
    planted: tuple[int, ...] = (1, 4, 7)
    cue_probability: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "planted", tuple(int(c) for c in self.planted))
        if any(not 0 <= c < len(SHAPE_NAMES) for c in self.planted) or len(set(self.planted)) != len(self.planted):
            raise UsageError(f"planted classes {self.planted}: expected distinct class indices in 0..{len(SHAPE_NAMES) - 1}")
        if not 0.0 <= self.cue_probability <= 1.0:
            raise UsageError(f"cue_probability={self.cue_probability}: expected a value in [0, 1]")
        if self.image_size < 16:
            raise UsageError(f"image_size={self.image_size}: expected at least 16 pixels")
        for name in ("n_train_per_class", "n_val_per_class"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name}={getattr(self, name)}: expected a non-negative count")

    def cue_orientation(self, planted_class: int) -> float:
        """Stripe direction in degrees of a planted class: evenly spread over 180 degrees in planted order."""
        return 180.0 * self.planted.index(planted_class) / len(self.planted)


@dataclass
class ShapesData:
    images: torch.Tensor  # uint8 [N, 3, S, S]
    labels: torch.Tensor  # int64 [N], class-major order
    boxes: torch.Tensor  # int64 [N, 4] tight half-open boxes of the drawn object
    coverage: torch.Tensor  # uint8 [N, S, S] anti-aliased object coverage (0 = background only)
    cue: torch.Tensor  # int64 [N] planted class whose stripes are behind the object, -1 = pool background
    planted: tuple[int, ...]
    split: str
    cue_mode: str
    config: ShapesConfig
    class_names: list[str] = field(default_factory=lambda: list(SHAPE_NAMES))

    def __len__(self) -> int:
        return len(self.labels)


def _cue_assignment(labels: np.ndarray, config: ShapesConfig, mode: str, draw: np.ndarray) -> np.ndarray:
    cue = np.full(len(labels), -1, dtype=np.int64)
    planted = list(config.planted)
    if mode == "planted":
        for c in planted:
            chosen = (labels == c) & (draw < config.cue_probability)
            cue[chosen] = c
    elif mode == "swap" and planted:
        for i, label in enumerate(labels):
            if label in planted:
                other = planted[(planted.index(label) + 1) % len(planted)]
                cue[i] = other if other != label else -1
            else:
                cue[i] = planted[i % len(planted)]
    return cue


def _pick_colour(candidates: np.ndarray, backdrop: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """First candidate colour that stands out from (90% of) the background under the object, else the best."""
    under = backdrop[coverage > 0]  # [P, 3]
    squared = ((under[None, :, :] - candidates[:, None, :]) ** 2).sum(axis=2)  # [tries, P]
    too_close = (squared < _MIN_CONTRAST ** 2).mean(axis=1)
    good = np.flatnonzero(too_close <= 0.1)
    return candidates[good[0] if len(good) else int(np.argmin(too_close))]


def _pick_second_stripe(first: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    distance = np.linalg.norm(candidates - first, axis=1)
    good = np.flatnonzero(distance >= _MIN_STRIPE_CONTRAST)
    return candidates[good[0] if len(good) else int(np.argmax(distance))]


def generate_shapes(config: ShapesConfig = ShapesConfig(), split: str = "train", cue: str = "planted") -> ShapesData:
    """Draw one split. `cue`: "planted" (the dataset), "none" (no cue anywhere: same objects and pool
    backgrounds) or "swap" (every object drawn on a planted class's cue other than its own class's)."""
    if split not in SPLITS:
        raise UsageError(f"shapes split {split!r}: expected one of {', '.join(SPLITS)}")
    if cue not in CUE_MODES:
        raise UsageError(f"shapes cue mode {cue!r}: expected one of {', '.join(CUE_MODES)}")
    per_class = config.n_train_per_class if split == "train" else config.n_val_per_class
    size, n_classes = config.image_size, len(SHAPE_NAMES)
    n = per_class * n_classes
    labels = np.repeat(np.arange(n_classes), per_class)
    streams = [np.random.default_rng([config.seed, SPLITS[split], k]) for k in range(4)]
    geometry, colours, pool, cue_rng = streams

    angle = geometry.uniform(0, 2 * np.pi, n)
    side = geometry.uniform(*_SIDE_RANGE, n)
    position = geometry.uniform(0, 1, (n, 2))
    colour_candidates = colours.uniform(0, 255, (n, _COLOUR_TRIES, 3)).astype(np.float32)
    kinds = pool.integers(0, len(BACKGROUND_KINDS), n)
    cue_draw = cue_rng.uniform(0, 1, n)
    jitter = cue_rng.uniform(-_ORIENTATION_JITTER_DEG, _ORIENTATION_JITTER_DEG, n)
    phase = cue_rng.uniform(0, 6, n)
    stripe_first = cue_rng.uniform(0, 255, (n, 3)).astype(np.float32)
    stripe_second = cue_rng.uniform(0, 255, (n, _COLOUR_TRIES, 3)).astype(np.float32)
    cue_of = _cue_assignment(labels, config, cue, cue_draw)

    images = np.empty((n, size, size, 3), dtype=np.uint8)
    coverage = np.empty((n, size, size), dtype=np.uint8)
    boxes = np.empty((n, 4), dtype=np.int64)
    for i in range(n):
        parts = place_shape(SHAPE_NAMES[labels[i]], size, angle[i], side[i], *position[i])
        cover = rasterise(parts, size)
        # The pool background is drawn for every image, cue or not, to keep the streams aligned across modes.
        backdrop = background(BACKGROUND_KINDS[kinds[i]], size, pool)
        if cue_of[i] >= 0:
            backdrop = stripes(size, config.cue_orientation(int(cue_of[i])) + jitter[i], phase[i], stripe_first[i],
                               _pick_second_stripe(stripe_first[i], stripe_second[i]))
        colour = _pick_colour(colour_candidates[i], backdrop, cover)
        alpha = cover[..., None].astype(np.float32) / 255.0
        images[i] = np.clip(np.rint(backdrop * (1 - alpha) + colour * alpha), 0, 255)
        coverage[i] = cover
        boxes[i] = tight_box(cover)
    return ShapesData(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=torch.from_numpy(labels).to(torch.int64),
        boxes=torch.from_numpy(boxes),
        coverage=torch.from_numpy(coverage),
        cue=torch.from_numpy(cue_of),
        planted=config.planted,
        split=split,
        cue_mode=cue,
        config=config,
    )


def channel_stats(data: ShapesData) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and std of the images in [0, 1] (use the training split's for normalising)."""
    pixels = data.images.permute(1, 0, 2, 3).reshape(3, -1).to(torch.float64) / 255.0
    mean, std = pixels.mean(dim=1), pixels.std(dim=1)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


class ShapesDataset(Dataset):
    """BoxSample view of ShapesData, normalised with the given (training split's) mean/std
    (rtool.data.protocol)."""

    multi_label = False

    def __init__(self, data: ShapesData, mean, std) -> None:
        self.data = data
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise UsageError(f"shapes mean={self.mean} std={self.std}: expected 3 means and 3 positive stds")
        self.class_names = list(data.class_names)
        self.skipped: list[tuple[str, str]] = []
        self._mean = torch.tensor(self.mean).view(3, 1, 1)
        self._std = torch.tensor(self.std).view(3, 1, 1)
        suffix = "" if data.cue_mode == "planted" else f"-{data.cue_mode}"
        self._prefix = f"shapes/{data.split}{suffix}"

    @property
    def labels(self) -> list[int]:
        return self.data.labels.tolist()

    @property
    def keys(self) -> list[str]:
        return [self._key(i) for i in range(len(self))]

    def _key(self, index: int) -> str:
        return f"{self._prefix}/{index:06d}"

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> BoxSample:
        if not 0 <= index < len(self):
            raise IndexError(index)
        image = (self.data.images[index].to(torch.float32) / 255.0 - self._mean) / self._std
        return BoxSample(image=image, label=int(self.data.labels[index]), boxes=self.data.boxes[index].view(1, 4).clone(),
                         key=self._key(index))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [..., 3, S, S] -> the float tensors this dataset yields (for fast batched use)."""
        return (images.to(torch.float32) / 255.0 - self._mean) / self._std


def load_shapes(config: ShapesConfig = ShapesConfig(), split: str = "val", cue: str = "planted") -> ShapesDataset:
    """A split as a dataset normalised with the training split's statistics (generates the train split)."""
    train = generate_shapes(config, "train")
    mean, std = channel_stats(train)
    data = train if (split == "train" and cue == "planted") else generate_shapes(config, split, cue)
    return ShapesDataset(data, mean, std)


def class_folder_name(label: int) -> str:
    """Folder of a class in `write_folder` output: index-prefixed so sorted order = class order."""
    return f"{label:02d}_{SHAPE_NAMES[label]}"


def write_folder(data: ShapesData, root: str | Path) -> Path:
    """Write a split as PNGs + VOC-style XMLs (0-based half-open boxes) in the `BoxFolder` layout."""
    root = Path(root)
    size = data.images.shape[-1]
    for label in range(len(data.class_names)):
        (root / class_folder_name(label)).mkdir(parents=True, exist_ok=True)
    for i in range(len(data)):
        label = int(data.labels[i])
        stem = f"{data.split}_{i:06d}"
        folder = root / class_folder_name(label)
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(folder / f"{stem}.png")
        obj = AnnotatedObject(name=data.class_names[label], box=tuple(int(v) for v in data.boxes[i]))
        write_voc_xml(folder / f"{stem}.xml", f"{stem}.png", size, size, [obj], folder=folder.name)
    return root
