"""What `rtool corner` runs on: a classification dataset (the embedded `digits` with planted mislabels by
default) and a model (the authors' ConvNet trained on it, or a user's checkpoint)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from rtool.corner.planted import plant_mislabels
from rtool.data.classification import ClassificationData
from rtool.data.classification_catalog import load_classification
from rtool.errors import UsageError
from rtool.models import ModelRequest, build_model, input_normalization, num_classes_of
from rtool.models.corner import CORNER_ARCHITECTURE, corner_training, train_corner_model

DEFAULT_PLANTED = 15   # mislabelled digits training images in the embedded default


@dataclass(frozen=True)
class CornerData:
    train: ClassificationData
    test: ClassificationData
    planted: torch.Tensor | None   # training indices given a wrong label (embedded default), else None


def load_corner_data(dataset: str = "digits", data_dir: Path | None = None, *, planted: int | None = None,
                     seed: int = 0, **options) -> CornerData:
    """Train and test split of `dataset`; `planted` mislabels in the training split (default: DEFAULT_PLANTED on
    digits, none elsewhere), drawn with `seed`. `options` go to the loader (`load_classification`)."""
    train = load_classification(dataset, data_dir, "train", **options)
    test = load_classification(dataset, data_dir, "test", **options)
    count = (DEFAULT_PLANTED if dataset == "digits" else 0) if planted is None else planted
    if count == 0:
        return CornerData(train, test, None)
    train, indices = plant_mislabels(train, count, seed)
    return CornerData(train, test, indices)


def load_corner_model(request: ModelRequest, data: CornerData, *, seed: int = 0, epochs: int | None = None,
                      device: torch.device | str = "cpu", quiet: bool = True) -> tuple[nn.Module, str]:
    """(model in eval mode, its name): a user's `request.name` + `request.weights`, or without weights that
    architecture (the authors' ConvNet when no name is given) trained on the training split with the authors'
    recipe (cached). Its outputs must match the dataset's classes."""
    if request.weights is None:
        architecture = request.name or CORNER_ARCHITECTURE
        model = train_corner_model(data.train, seed=seed, training=corner_training(data.train.name, epochs),
                                   device=device, progress=not quiet, architecture=architecture)
        name = f"{architecture} (trained here)"
    else:
        model = build_model(request.name, request.weights, request.num_classes)
        name = request.name
    outputs = num_classes_of(model)
    if outputs != data.train.num_classes:
        raise UsageError(f"model {name} has {outputs} outputs but {data.train.name} has {data.train.num_classes} "
                         f"classes; expected a model with {data.train.num_classes} outputs")
    return model.to(device).eval(), name


def inputs_for_model(data: CornerData, request: ModelRequest) -> CornerData:
    """The data as `request`'s model takes it: normalised with its weights' mean/std when they are torchvision's
    named ImageNet weights, unchanged otherwise (models trained here and checkpoints take [0, 1] images)."""
    stats = input_normalization(request.name, request.weights) if request.name else None
    if stats is None:
        return data
    return CornerData(data.train.normalized(*stats), data.test.normalized(*stats), data.planted)
