"""Unlabelled images from a folder (what `rtool detect predict` scores): every image file below it, sorted by
relative path, decoded like `folder` datasets (RGB or grey, PIL bilinear resize, [0, 1]); a file that cannot
be decoded is skipped and recorded."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from rtool.data.classification_folder import DECODE_ERRORS, decode_resized, stack_images
from rtool.errors import UsageError


@dataclass(frozen=True)
class ImageFiles:
    images: torch.Tensor              # float32 [N, C, H, W] in [0, 1]
    keys: list[str]                   # relative paths, in order
    skipped: list[tuple[str, str]] = field(default_factory=list)


def load_image_files(folder: str | Path, image_shape: tuple[int, int, int]) -> ImageFiles:
    """The images below `folder` at `image_shape` (C, H, W), C 1 or 3."""
    channels, height, width = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise UsageError(f"image channels {channels}: expected 1 (grey) or 3 (RGB)")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise UsageError(f"image folder {root}: no such directory; expected a folder of image files")
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
    pixels, keys, skipped = [], [], []
    for path in paths:
        key = path.relative_to(root).as_posix()
        try:
            pixels.append(decode_resized(path, channels, (width, height)))
        except DECODE_ERRORS as err:
            skipped.append((key, f"cannot decode: {err}"))
            continue
        keys.append(key)
    if not pixels:
        detail = f" ({len(skipped)} unreadable)" if skipped else ""
        raise UsageError(f"image folder {root}: no readable images{detail}; expected {', '.join(IMG_EXTENSIONS)} "
                         f"files")
    return ImageFiles(images=stack_images(pixels, channels), keys=keys, skipped=skipped)
