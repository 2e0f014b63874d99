"""ImageNet images for classification benchmarks (no boxes needed): the val class folders and ImageNet-C.

- val: `root/val/<wnid>/*.JPEG` or `root/<wnid>/*.JPEG`; the label is the folder's wnid in the standard
  class order (rtool.data.imagenet_classes). Order: class, then file name.
- ImageNet-C (Hendrycks & Dietterich 2019): `root/<corruption>/<severity 1-5>/<wnid>/*.JPEG`, already
  resized and cropped (224x224 in the release). Every corruption folder must hold the five severities.

Indexing never decodes; `LabelledImages.load(i)` decodes one image (a corrupt file is a one-line
UsageError naming it, rtool.data.base.load_rgb).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.folder import IMG_EXTENSIONS

from rtool.data.base import existing_dir, load_rgb
from rtool.data.imagenet_classes import ImageNetClasses, load_imagenet_classes
from rtool.engine import stable_hash
from rtool.errors import UsageError

_WNID_DIR = re.compile(r"^n\d{8}$")
SEVERITIES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class LabelledImages:
    """Image files with class indices, in a fixed order (the dataset index of each image)."""

    root: Path
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def keys(self) -> list[str]:
        return [p.relative_to(self.root).as_posix() for p in self.paths]

    def load(self, index: int):
        """The PIL RGB image of item `index`."""
        return load_rgb(self.paths[index])

    def fingerprint(self) -> str:
        """Identity of the items without decoding them: keys, sizes on disk and labels."""
        return stable_hash([self.keys(), [p.stat().st_size for p in self.paths], list(self.labels)])


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS


def _wnid_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and _WNID_DIR.match(p.name))


def index_class_folders(folder: Path, classes: ImageNetClasses, root: Path | None = None,
                        limit_per_class: int | None = None) -> LabelledImages:
    """The images of `folder/<wnid>/*` (class order, then file name); an empty folder is a UsageError."""
    paths: list[Path] = []
    labels: list[int] = []
    for class_dir in _wnid_dirs(folder):
        if class_dir.name not in classes:
            raise UsageError(f"ImageNet folder {class_dir}: wnid {class_dir.name} is not in the class map")
        label = classes.index(class_dir.name)
        images = sorted(p for p in class_dir.iterdir() if _is_image(p))
        for image in images[:limit_per_class]:
            paths.append(image)
            labels.append(label)
    if not paths:
        raise UsageError(f"ImageNet folder {folder}: no images in <wnid>/ subfolders; expected "
                         f"{folder}/n01440764/*.JPEG and so on")
    return LabelledImages(root or folder, tuple(paths), tuple(labels), tuple(classes.labels))


def imagenet_val_images(root: str | Path, limit_per_class: int | None = None,
                        classes: ImageNetClasses | None = None) -> LabelledImages:
    """ImageNet val in class folders: `root/val/<wnid>/` or `root/<wnid>/`."""
    base = existing_dir(root, "ImageNet root")
    classes = classes or load_imagenet_classes()
    for candidate in (base / "val", base):
        if candidate.is_dir() and _wnid_dirs(candidate):
            return index_class_folders(candidate, classes, base, limit_per_class)
    raise UsageError(f"ImageNet root {base}: no val/<wnid>/ or <wnid>/ folders; expected the ImageNet val layout")


def imagenet_c_corruptions(root: str | Path) -> list[str]:
    """The corruption folders of an ImageNet-C root (sorted), each checked for its five severities."""
    base = existing_dir(root, "ImageNet-C root")
    names = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UsageError(f"ImageNet-C root {base}: no corruption folders; expected <corruption>/<1-5>/<wnid>/*.JPEG")
    for name in names:
        check_severities(base, name)
    return names


def check_severities(root: Path, corruption: str) -> None:
    folder = root / corruption
    if not folder.is_dir():
        raise UsageError(f"ImageNet-C root {root}: no folder {corruption}/; expected <corruption>/<1-5>/<wnid>/*.JPEG")
    missing = [str(s) for s in SEVERITIES if not (folder / str(s)).is_dir()]
    if missing:
        raise UsageError(f"ImageNet-C folder {folder}: severity folder(s) {', '.join(missing)} missing; "
                         "expected the five folders 1 to 5")


def imagenet_c_images(root: str | Path, corruption: str, severity: int, limit_per_class: int | None = None,
                      classes: ImageNetClasses | None = None) -> LabelledImages:
    """The images of one (corruption, severity) of an ImageNet-C root."""
    base = existing_dir(root, "ImageNet-C root")
    check_severities(base, corruption)
    return index_class_folders(base / corruption / str(severity), classes or load_imagenet_classes(), base,
                               limit_per_class)
