"""What `rtool score` runs on: the dataset (with the model's preprocessing), the model and the target layer.

The generic pieces live where their kind does (`rtool.data.DataRequest`/`open_box_dataset`,
`rtool.models.ModelRequest`/`load_model`/`preprocess_for`); this module only adds the embedded default.
Parity (the authors' runs, spec §2/§8): Resize = crop = S, CIFAR-10 statistics, floored box offsets.
Corrected (default): the model's own evaluation transform and the exact crop offset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rtool.data import DataRequest, csv_name, open_box_dataset
from rtool.errors import UsageError
from rtool.models import ModelRequest, load_model, preprocess_for, resolve_layer
from rtool.score.shapes_default import load_shapes_default


@dataclass
class ScoreInputs:
    model: nn.Module
    model_name: str
    layer_name: str
    layer: nn.Module
    dataset: object                   # rtool.data.protocol box dataset
    class_csv_names: list[str] | None = None  # the authors' spelling of class names (ImageNet)
    planted: list[int] | None = None
    identity: dict = field(default_factory=dict)


def prepare_inputs(data: DataRequest, model: ModelRequest, *, parity: bool, device: torch.device,
                   quiet: bool = False) -> ScoreInputs:
    if data.dataset == "shapes" and model.name is None:
        default = load_shapes_default(data.shapes, device=device, quiet=quiet)
        layer_name, layer = resolve_layer(default.model, "shapes_cnn", model.layer or default.layer_name)
        return ScoreInputs(default.model, "shapes_cnn", layer_name, layer, default.dataset,
                           planted=default.planted, identity={**default.identity, "layer": layer_name})
    if model.name is None:
        raise UsageError(f"--model is required for --dataset {data.dataset} (e.g. --model resnet50 --weights DEFAULT)")
    loaded = load_model(model)
    identity = {"dataset": data.dataset, **loaded.identity}
    if data.dataset == "shapes":
        default = load_shapes_default(data.shapes, device=device, quiet=quiet)
        return ScoreInputs(loaded.model, loaded.name, loaded.layer_name, loaded.layer, default.dataset,
                           planted=default.planted, identity={**default.identity, **identity})
    dataset = open_box_dataset(data, preprocess_for(loaded.name, model.weights, parity, data.image_size))
    csv_names = [csv_name(n) for n in dataset.class_names] if data.dataset == "imagenet" else None
    return ScoreInputs(loaded.model, loaded.name, loaded.layer_name, loaded.layer, dataset,
                       class_csv_names=csv_names, identity=identity)
