"""Shared machinery of the on-disk box datasets: an index of entries, lazy decoding, preprocessing.

Corrupt images are found when an item is loaded (indexing never decodes): `__getitem__` raises
`UsageError` naming the file, so a run stops with one clear line instead of scoring a partial dataset.
Annotation problems are found at index time and recorded in `skipped` as (key, reason).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from rtool.data.annotations import Annotation, AnnotationError, read_voc_xml
from rtool.data.sample import BoxSample
from rtool.data.transforms import Preprocess
from rtool.errors import UsageError


@dataclass
class Entry:
    path: Path
    label: int
    boxes: torch.Tensor  # [n, 4] int64, half-open, original image pixels
    key: str


def load_rgb(path: Path) -> Image.Image:
    """Decode an image fully into RGB; a corrupt or unreadable file raises UsageError naming it."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise UsageError(f"corrupt image {path}: cannot decode it ({err}); expected a readable JPEG/PNG file") from None


def read_image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header without decoding pixels; None when the header is unreadable."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return None


def existing_dir(path: Path | str, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UsageError(f"{what} {path}: no such directory")
    return path


class BoxDataset(Dataset):
    """Base of ImageNetVal, VOCPairs and BoxFolder (rtool.data.protocol): subclasses fill `entries`,
    `class_names`, `skipped`."""

    multi_label = False

    def __init__(self, preprocess: Preprocess) -> None:
        if not isinstance(preprocess, Preprocess):
            raise UsageError(f"preprocess {preprocess!r}: expected an rtool.data.Preprocess")
        self.preprocess = preprocess
        self.entries: list[Entry] = []
        self.class_names: list[str] = []
        self.skipped: list[tuple[str, str]] = []

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.preprocess.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.preprocess.std

    @property
    def labels(self) -> list[int]:
        return [entry.label for entry in self.entries]

    @property
    def keys(self) -> list[str]:
        return [entry.key for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> BoxSample:
        entry = self.entries[index]
        image = load_rgb(entry.path)
        tensor, boxes = self.preprocess.apply(image, entry.boxes)
        return BoxSample(image=tensor, label=entry.label, boxes=boxes, key=entry.key)

    def skip(self, key: str, reason: str) -> None:
        self.skipped.append((key, reason))

    def read_annotation(self, key: str, xml: Path | None, missing: str) -> Annotation | None:
        """The boxes XML of item `key`, or None after recording why the item is skipped (`missing` when the
        file is absent, else the parse problem or "no boxes")."""
        if xml is None or not xml.is_file():
            self.skip(key, missing)
            return None
        try:
            annotation = read_voc_xml(xml)
        except AnnotationError as err:
            self.skip(key, f"{xml.name}: {err}")
            return None
        if not annotation.objects:
            self.skip(key, f"{xml.name}: no boxes")
            return None
        return annotation
