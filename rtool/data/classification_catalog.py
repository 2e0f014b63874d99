"""One entry point for the classification datasets: `load_classification(name, data_dir, split)`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rtool.data.cifar import load_cifar10
from rtool.data.classification import ClassificationData, check_split
from rtool.data.classification_folder import load_image_folder
from rtool.data.digits import load_digits
from rtool.data.imagenet_subset import load_imagenet_subset
from rtool.data.mnist import load_mnist
from rtool.errors import UsageError

CLASSIFICATION_DATASETS = {
    "digits": "scikit-learn's handwritten digits at 28x28 (embedded, no --data-dir)",
    "mnist": "MNIST IDX files (train-images-idx3-ubyte[.gz], ...) in --data-dir, flat or MNIST/raw",
    "cifar10": "CIFAR-10 python batches (cifar-10-batches-py/data_batch_1..5, test_batch) in --data-dir",
    "folder": "an image folder --data-dir/<class_name>/<image> (or with train/ and test/ inside)",
    "imagenet": "ImageNet class folders --data-dir/train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, a subset of classes",
}
_OPTIONS = {"digits": {"size", "split_seed", "test_size"}, "mnist": set(), "cifar10": set(),
            "folder": {"image_size", "channels"}, "imagenet": {"classes", "image_size"}}


def load_classification(name: str, data_dir: str | Path | None = None, split: str = "train",
                        **options: Any) -> ClassificationData:
    """Load split `split` ("train" or "test") of dataset `name` (a key of `CLASSIFICATION_DATASETS`).

    `data_dir` is required by every dataset but `digits` (which ignores it). `options` go to the loader:
    digits: `size`, `split_seed`, `test_size` (`rtool.data.digits.load_digits`); folder: `image_size`,
    `channels` (`rtool.data.classification_folder.load_image_folder`); imagenet: `classes` (wnids or indices;
    None = every class folder), `image_size` (`rtool.data.imagenet_subset.load_imagenet_subset`). Unknown names, splits, options or a
    missing folder are a one-line `UsageError` listing what was expected.
    """
    if name not in CLASSIFICATION_DATASETS:
        raise UsageError(f"unknown dataset {name!r}; expected one of {', '.join(CLASSIFICATION_DATASETS)}")
    check_split(split, name)
    unknown = sorted(set(options) - _OPTIONS[name])
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[name])) or "none"
        raise UsageError(f"dataset {name} does not take option(s) {', '.join(unknown)}; expected: {allowed}")
    if name == "digits":
        return load_digits(split, **options)
    if data_dir is None:
        raise UsageError(f"dataset {name} needs --data-dir: {CLASSIFICATION_DATASETS[name]}")
    if not Path(data_dir).expanduser().is_dir():
        raise UsageError(f"{name} data dir {data_dir}: no such directory; expected {CLASSIFICATION_DATASETS[name]}")
    if name == "mnist":
        return load_mnist(data_dir, split)
    if name == "cifar10":
        return load_cifar10(data_dir, split)
    if name == "imagenet":
        return load_imagenet_subset(data_dir, split, **options)
    return load_image_folder(data_dir, split, **options)
