"""A user's ImageFolder-style classification data, decoded into memory: `root/<class_name>/<image>`.

Class order = sorted folder names, image order = class then file name (torchvision's ImageFolder rules,
whose `find_classes`/`make_dataset` do the indexing). A split is `root/<split>/` when that folder exists
(`root/val/` is accepted for "test"), else the whole `root` is used for either split. Each image is
converted to RGB (`channels=3`) or grey (`channels=1`), resized to `image_size` with PIL's bilinear filter
(which antialiases when shrinking) and scaled to [0, 1]. An image that cannot be decoded is skipped and
recorded in `skipped` as (relative path, reason); a folder with no readable image is a `UsageError`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from rtool.data.classification import ClassificationData, check_split, to_unit_float
from rtool.errors import UsageError

_SPLIT_FOLDERS = {"train": ("train",), "test": ("test", "val")}


def split_root(root: Path, split: str) -> Path:
    for name in _SPLIT_FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    return root


DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError)


def decode_resized(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One image file as uint8 [H, W, 3] (RGB) or [H, W] (grey), resized to size = (W, H) by PIL's bilinear."""
    with Image.open(path) as image:
        image = image.convert("RGB" if channels == 3 else "L").resize(size, Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def stack_images(pixels: list[np.ndarray], channels: int) -> torch.Tensor:
    """Decoded images -> float32 [N, C, H, W] in [0, 1]."""
    array = np.stack(pixels)
    array = array[:, None] if channels == 1 else array.transpose(0, 3, 1, 2)
    return to_unit_float(array)


def load_image_folder(root: str | Path, split: str = "train", *, image_size: int | tuple[int, int] = 32,
                      channels: int = 3) -> ClassificationData:
    """The images under `root` (module docstring) as float32 [N, channels, H, W] in [0, 1]."""
    check_split(split, "folder")
    if channels not in (1, 3):
        raise UsageError(f"folder channels={channels}: expected 1 (grey) or 3 (RGB)")
    height, width = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if height < 1 or width < 1:
        raise UsageError(f"folder image_size={image_size}: expected a positive size")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UsageError(f"image folder {base}: no such directory; expected root/<class_name>/<image>")
    folder = split_root(base, split)
    try:
        class_names, class_to_idx = find_classes(str(folder))
    except FileNotFoundError:
        raise UsageError(f"image folder {folder}: no class subfolders; expected {folder}/<class_name>/<image>") from None
    samples = make_dataset(str(folder), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    pixels, labels, skipped = [], [], []
    for path_str, label in samples:
        path = Path(path_str)
        try:
            pixels.append(decode_resized(path, channels, (width, height)))
        except DECODE_ERRORS as err:
            skipped.append((path.relative_to(folder).as_posix(), f"cannot decode: {err}"))
            continue
        labels.append(label)
    if not pixels:
        detail = f" ({len(skipped)} unreadable)" if skipped else ""
        raise UsageError(f"image folder {folder}: no readable images in its class subfolders{detail}; expected "
                         f"{', '.join(IMG_EXTENSIONS)} files")
    return ClassificationData(images=stack_images(pixels, channels), labels=torch.tensor(labels, dtype=torch.int64),
                              class_names=list(class_names), name="folder", split=split, source=str(folder),
                              skipped=skipped)
