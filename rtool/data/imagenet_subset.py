"""A subset of ImageNet classes as in-memory classification data, labelled by ImageNet index.

Layout: `root/train/<wnid>/*.JPEG` and `root/val/<wnid>/*.JPEG` (the "test" split reads `val/`). The labels are
the classes' indices in the standard 1000 (rtool/data/imagenet_classes.tsv) and `class_names` holds all 1000
labels, so the outputs of an ImageNet classifier line up with them whatever subset is loaded. Each image is
converted to RGB, its shorter side resized to `resize` (bilinear, antialiased), centre-cropped to
`image_size` and scaled to [0, 1]; the model's mean/std normalisation is left to the caller
(`ClassificationData.normalized`). Unreadable images are skipped and recorded in `skipped`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms.v2 import functional as TF

from rtool.data.classification import ClassificationData, check_split
from rtool.data.classification_folder import DECODE_ERRORS
from rtool.data.imagenet_classes import load_imagenet_classes
from rtool.errors import UsageError

_SPLIT_FOLDER = {"train": "train", "test": "val"}


def _wanted(classes: tuple[str | int, ...] | None, folder: Path, known) -> list[str]:
    present = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name in known)
    if classes is None:
        if not present:
            raise UsageError(f"imagenet folder {folder}: no <wnid> class folders (like n01440764); expected "
                             f"{folder}/<wnid>/<image>")
        return present
    wnids = []
    for item in classes:
        text = str(item).strip()
        if text.isdigit():
            index = int(text)
            if not 0 <= index < len(known):
                raise UsageError(f"imagenet class {index}: expected an index in 0..{len(known) - 1} or a wnid")
            text = known.wnids[index]
        elif text not in known:
            raise UsageError(f"imagenet class {text!r}: expected a wnid like n01440764 or an index in "
                             f"0..{len(known) - 1}")
        if not (folder / text).is_dir():
            raise UsageError(f"imagenet class {text}: no folder {folder / text}")
        wnids.append(text)
    return list(dict.fromkeys(wnids))


def _decode(path: Path, resize: int, size: int) -> torch.Tensor:
    with Image.open(path) as image:
        tensor = TF.pil_to_tensor(image.convert("RGB"))
    tensor = TF.resize(tensor, resize, antialias=True)
    return TF.to_dtype(TF.center_crop(tensor, [size, size]), torch.float32, scale=True)


def load_imagenet_subset(root: str | Path, split: str = "train", *, classes: tuple[str | int, ...] | None = None,
                         image_size: int = 224, resize: int | None = None) -> ClassificationData:
    """The images of `classes` (wnids or ImageNet indices; None: every wnid folder of the split) under `root`."""
    check_split(split, "imagenet")
    if image_size < 8:
        raise UsageError(f"imagenet image_size={image_size}: expected at least 8 pixels")
    resize = resize or round(image_size * 256 / 224)
    base = Path(root).expanduser()
    folder = base / _SPLIT_FOLDER[split]
    if not folder.is_dir():
        raise UsageError(f"imagenet {split} split: no folder {folder}; expected {base}/train/<wnid>/<image> and "
                         f"{base}/val/<wnid>/<image>")
    known = load_imagenet_classes()
    images, labels, skipped = [], [], []
    for wnid in _wanted(classes, folder, known):
        files = sorted(p for p in (folder / wnid).iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
        for path in files:
            try:
                images.append(_decode(path, resize, image_size))
            except DECODE_ERRORS as err:
                skipped.append((path.relative_to(folder).as_posix(), f"cannot decode: {err}"))
                continue
            labels.append(known.index(wnid))
    if not images:
        detail = f" ({len(skipped)} unreadable)" if skipped else ""
        raise UsageError(f"imagenet folder {folder}: no readable images in the chosen classes{detail}")
    return ClassificationData(images=torch.stack(images), labels=torch.tensor(labels, dtype=torch.int64),
                              class_names=list(known.labels), name="imagenet", split=split, source=str(folder),
                              skipped=skipped)
