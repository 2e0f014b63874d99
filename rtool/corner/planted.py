"""The embedded default's planted truth: training images given a wrong label.

A mislabelled image is the clearest corner case there is: a model that fits its training set places it among
another class's images, so its surprise (DSA3 under the model's prediction, references by the given labels) is
high, and the corner-case selection should find it.
"""
from __future__ import annotations

import torch

from rtool.data.classification import ClassificationData
from rtool.errors import UsageError


def plant_mislabels(data: ClassificationData, count: int, seed: int = 0) -> tuple[ClassificationData, torch.Tensor]:
    """`data` with `count` images (drawn with `seed`) relabelled to another class drawn uniformly, and their
    indices (ascending). Everything else is unchanged."""
    if not 0 <= count < len(data):
        raise UsageError(f"planted count {count}: expected 0..{len(data) - 1} for {len(data)} images")
    if data.num_classes < 2:
        raise UsageError(f"{data.name} has {data.num_classes} class; mislabelling needs at least 2")
    gen = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(len(data), generator=gen)[:count].sort().values
    shift = torch.randint(1, data.num_classes, (count,), generator=gen)
    labels = data.labels.clone()
    labels[chosen] = (labels[chosen] + shift) % data.num_classes
    planted = ClassificationData(images=data.images, labels=labels, class_names=list(data.class_names),
                                 name=data.name, split=data.split, source=f"{data.source} ({count} mislabelled)",
                                 indices=data.indices.clone(), skipped=list(data.skipped))
    return planted, chosen
