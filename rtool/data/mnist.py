"""MNIST from its real IDX files in a user's folder (no download).

Files per split: `train-images-idx3-ubyte` + `train-labels-idx1-ubyte` (train) and `t10k-images-idx3-ubyte` +
`t10k-labels-idx1-ubyte` (test), each raw or with `.gz` (the raw file wins when both exist). They are looked
for in `data_dir`, `data_dir/raw` and `data_dir/MNIST/raw` (torchvision's layout), in that order, and the
names with a dot (`train-images.idx3-ubyte`, as some mirrors ship them) are accepted too. Images must be IDX
uint8 with 3 dimensions (magic 0x00000803), labels IDX uint8 with 1 dimension (0x00000801), the same count
in both, every label in 0..9; anything else is a one-line `UsageError` naming the file.
Pixels become float32 value / 255 in [0, 1] with shape [N, 1, H, W] (torchvision's ToTensor, the reference's
only transform).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rtool.data.classification import ClassificationData, check_split, to_unit_float
from rtool.data.idx import read_idx
from rtool.errors import UsageError

MNIST_CLASSES = [str(d) for d in range(10)]
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_SUBDIRS = (".", "raw", "MNIST/raw")
_UBYTE = 0x08


def _variants(name: str) -> list[str]:
    dotted = name.replace("-idx", ".idx")
    return [name, f"{name}.gz", dotted, f"{dotted}.gz"]


def find_mnist_file(data_dir: Path, name: str) -> Path | None:
    for sub in MNIST_SUBDIRS:
        folder = data_dir / sub
        for candidate in _variants(name):
            if (folder / candidate).is_file():
                return folder / candidate
    return None


def mnist_files(data_dir: str | Path, split: str = "train") -> tuple[Path, Path]:
    """(images file, labels file) of `split` under `data_dir`; a UsageError saying what is missing and where."""
    check_split(split, "mnist")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UsageError(f"mnist data dir {root}: no such directory; expected a folder with {MNIST_FILES[split][0]}[.gz]")
    found = [find_mnist_file(root, name) for name in MNIST_FILES[split]]
    missing = [name for name, path in zip(MNIST_FILES[split], found) if path is None]
    if missing:
        places = ", ".join(str(root / s) if s != "." else str(root) for s in MNIST_SUBDIRS)
        raise UsageError(f"mnist {split} split: {' and '.join(m + '[.gz]' for m in missing)} not found in {places}")
    return found[0], found[1]  # type: ignore[return-value]


def read_mnist_pair(images_path: Path, labels_path: Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, H, W] and int64 labels [N] from an IDX pair, validated (see module docstring)."""
    images = read_idx(images_path, expect_type=_UBYTE, expect_ndim=3)
    labels = read_idx(labels_path, expect_type=_UBYTE, expect_ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise UsageError(f"{labels_path}: {labels.shape[0]} labels but {images_path.name} holds {images.shape[0]} "
                         f"images; expected the same count")
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise UsageError(f"{labels_path}: label {int(labels[bad])} at item {bad}; expected labels in 0..{num_classes - 1}")
    return images, labels.astype(np.int64)


def load_mnist(data_dir: str | Path, split: str = "train") -> ClassificationData:
    """One MNIST split from the IDX files under `data_dir` (module docstring), in file order."""
    images_path, labels_path = mnist_files(data_dir, split)
    images, labels = read_mnist_pair(images_path, labels_path)
    return ClassificationData(images=to_unit_float(images[:, None]), labels=torch.from_numpy(labels),
                              class_names=list(MNIST_CLASSES), name="mnist", split=split, source=str(images_path.parent))
