"""The protocol every box dataset follows (ImageNetVal, VOCPairs, BoxFolder, ShapesDataset, or a user's own).

Required:
- `__len__()` and `__getitem__(i) -> BoxSample` (image tensor [3, H, W] as the model takes it, label, boxes
  [K, 4] half-open in that tensor's pixels, key: a string that names the item uniquely);
- `class_names: list[str]`.

Optional (rtool's own datasets have them all; the accessors below fall back when a user's dataset does not):
- `keys: list[str]` and `labels: list[int]`: every item's key and label without decoding any image;
- `mean`, `std`: the normalisation the images carry (3 floats each), to show them and to hide boxes with;
- `skipped: list[tuple[str, str]]`: items left out while indexing, with the reason;
- `multi_label: bool`: the dataset's models score each class on its own (sigmoid outputs), as for Pascal VOC;
- `preprocess`: what turns a file into the tensor (part of the dataset's identity).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from rtool.data.sample import BoxSample
from rtool.engine import stable_hash

IDENTITY_MEAN = (0.0, 0.0, 0.0)
IDENTITY_STD = (1.0, 1.0, 1.0)


@runtime_checkable
class BoxDatasetLike(Protocol):
    class_names: list[str]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> BoxSample: ...


def dataset_labels(dataset: BoxDatasetLike) -> list[int]:
    """Every item's label, without decoding images where the dataset lists them."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return list(labels)
    return [dataset[i].label for i in range(len(dataset))]


def key_index(dataset: BoxDatasetLike, wanted: Iterable[str] | None = None) -> dict[str, int]:
    """{item key: index}. Without `keys` the items are read one by one, stopping once every key in `wanted`
    (if given) is found."""
    keys = getattr(dataset, "keys", None)
    if keys is not None:
        return {key: i for i, key in enumerate(keys)}
    remaining = set(wanted) if wanted is not None else None
    found: dict[str, int] = {}
    for i in range(len(dataset)):
        key = dataset[i].key
        found[key] = i
        if remaining is not None:
            remaining.discard(key)
            if not remaining:
                break
    return found


def normalisation(dataset: BoxDatasetLike) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the dataset's images are normalised with; identity when it does not say."""
    return tuple(getattr(dataset, "mean", IDENTITY_MEAN)), tuple(getattr(dataset, "std", IDENTITY_STD))


def is_multi_label(dataset: BoxDatasetLike) -> bool:
    return bool(getattr(dataset, "multi_label", False))


def skipped_items(dataset: BoxDatasetLike) -> list[tuple[str, str]]:
    return list(getattr(dataset, "skipped", []))


def dataset_fingerprint(dataset: BoxDatasetLike) -> str:
    """Identity of the items without decoding them (for resume keys): type, size, classes, keys, preprocessing."""
    keys = getattr(dataset, "keys", None)
    return stable_hash([type(dataset).__name__, len(dataset), list(dataset.class_names),
                        list(keys) if keys is not None else [], repr(getattr(dataset, "preprocess", None))])
