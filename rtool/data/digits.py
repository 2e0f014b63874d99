"""The embedded `digits` dataset of `rtool corner` and `rtool detect`: scikit-learn's handwritten digits at 28x28.

Source: `sklearn.datasets.load_digits()` (real data bundled with scikit-learn, no download): 1,797 grey
8x8 images, pixel values 0..16, labels 0..9 (174..183 per class).
Recipe:
- scale to [0, 1] (value / 16), then upsample 8x8 → 28x28 with `torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False)` (antialiasing only acts when shrinking, so it is off); a bilinear blend of values in
  [0, 1] stays in [0, 1]. The digit fills the frame (no MNIST-style 4-pixel margin).
- a stratified train/test split from `sklearn.model_selection.train_test_split(test_size=360,
  stratify=labels, random_state=split_seed)` with `split_seed=0`: 1,437 train and 360 test images, every
  class in the same proportion (±1 image) in both; within a split the images keep scikit-learn's order.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from rtool.data.classification import ClassificationData, check_split
from rtool.errors import UsageError

DIGITS_SIZE = 28
DIGITS_TEST_SIZE = 360
DIGITS_SPLIT_SEED = 0
DIGITS_CLASSES = [str(d) for d in range(10)]


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    bunch = load_digits()
    images, labels = bunch.images.astype(np.float32), bunch.target.astype(np.int64)
    images.setflags(write=False)  # shared between calls; callers index (copy) before use
    labels.setflags(write=False)
    return images, labels


def digits_split_indices(labels: np.ndarray, split_seed: int = DIGITS_SPLIT_SEED,
                         test_size: int = DIGITS_TEST_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions into scikit-learn's digits order, each sorted ascending; stratified by label."""
    from sklearn.model_selection import train_test_split
    if not 0 < test_size < len(labels):
        raise UsageError(f"digits test_size={test_size}: expected 1..{len(labels) - 1}")
    positions = np.arange(len(labels))
    train, test = train_test_split(positions, test_size=test_size, stratify=labels, random_state=int(split_seed))
    return np.sort(train), np.sort(test)


def upsample_digits(images: np.ndarray, size: int = DIGITS_SIZE) -> torch.Tensor:
    """[N, 8, 8] values 0..16 → float32 [N, 1, size, size] in [0, 1] (bilinear, align_corners=False)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return x.clamp_(0.0, 1.0).contiguous()


def load_digits(split: str = "train", *, size: int = DIGITS_SIZE, split_seed: int = DIGITS_SPLIT_SEED,
                test_size: int = DIGITS_TEST_SIZE) -> ClassificationData:
    """One split of the embedded `digits` data (module docstring); deterministic for a given `split_seed`."""
    check_split(split, "digits")
    if size < 8:
        raise UsageError(f"digits size={size}: expected at least 8 pixels")
    images, labels = _raw_digits()
    train, test = digits_split_indices(labels, split_seed, test_size)
    chosen = train if split == "train" else test
    return ClassificationData(
        images=upsample_digits(images[chosen], size), labels=torch.from_numpy(labels[chosen]),
        class_names=list(DIGITS_CLASSES), name="digits", split=split,
        source=f"sklearn.datasets.load_digits (split_seed={split_seed}, test_size={test_size}, {size}x{size})",
    )
