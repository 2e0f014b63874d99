"""The embedded default of `rtool score`: the generated `shapes` data and a small CNN trained on it (cached).

Some classes carry a planted background cue in every image; the score must rank exactly those lowest.
Recipe: specs/shapes.md.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from rtool.data.shapes import ShapesConfig, ShapesDataset, channel_stats, generate_shapes
from rtool.models import ShapesCNN, cached_model, train_classifier


@dataclass(frozen=True)
class ShapesTraining:
    epochs: int = 15
    lr: float = 3e-3
    weight_decay: float = 5e-4
    batch_size: int = 128


@dataclass
class ShapesDefault:
    model: nn.Module
    dataset: ShapesDataset   # validation split, normalised with the training statistics
    planted: list[int]
    layer_name: str
    identity: dict           # what made this model and data (for result keys and the summary)


def load_shapes_default(config: ShapesConfig = ShapesConfig(), training: ShapesTraining = ShapesTraining(), *,
                        device: torch.device = torch.device("cpu"), quiet: bool = False) -> ShapesDefault:
    """Generate the data, then load the cached model for this recipe or train it (first time only)."""
    train = generate_shapes(config, "train")
    mean, std = channel_stats(train)
    val = ShapesDataset(generate_shapes(config, "val"), mean, std)
    identity = {"dataset": "shapes", "shapes": asdict(config), "training": asdict(training), "model": "shapes_cnn"}

    def fit(model: nn.Module) -> nn.Module:
        images = ShapesDataset(train, mean, std).normalise(train.images)
        return train_classifier(model, images, train.labels, epochs=training.epochs, lr=training.lr,
                                batch_size=training.batch_size, weight_decay=training.weight_decay,
                                seed=config.seed, device=device, progress=not quiet)

    model = cached_model(identity, lambda: ShapesCNN(num_classes=len(train.class_names)), fit)
    return ShapesDefault(model=model, dataset=val, planted=sorted(config.planted),
                         layer_name=ShapesCNN.TARGET_LAYER, identity=identity)
