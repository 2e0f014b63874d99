"""What `rtool score` runs on: the dataset (with the right preprocessing), the model and the target layer.

Parity (the authors' runs, spec §2/§8): Resize = crop = S, CIFAR-10 statistics, floored box offsets.
Corrected (default): the model's own evaluation transform and the exact crop offset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms import InterpolationMode

from rtool.data import BoxFolder, ImageNetVal, Preprocess, VOCPairs, csv_name
from rtool.data.shapes import ShapesConfig
from rtool.errors import UsageError
from rtool.models import build_model, default_target_layer, eval_transform_spec, get_layer
from rtool.score.shapes_default import load_shapes_default

DATASETS = ("shapes", "imagenet", "voc", "folder")


@dataclass
class ScoreInputs:
    model: nn.Module
    model_name: str
    layer_name: str
    layer: nn.Module
    dataset: object                   # BoxSample items with class_names, mean, std, skipped
    class_csv_names: list[str] | None = None  # the authors' spelling of class names (ImageNet)
    planted: list[int] | None = None
    identity: dict = field(default_factory=dict)


@dataclass
class DataRequest:
    dataset: str = "shapes"
    data_dir: Path | None = None
    bbox_dir: Path | None = None
    voc_year: str = "2007"
    image_set: str = "val"
    limit_per_class: int | None = None
    image_size: int | None = None     # parity S; default: the model's crop size
    include_difficult: bool = False
    shapes: ShapesConfig = field(default_factory=ShapesConfig)


@dataclass
class ModelRequest:
    name: str | None = None           # None: the dataset's default (the trained shapes CNN for `shapes`)
    weights: str | None = None
    num_classes: int | None = None
    layer: str | None = None


def preprocess_for(model_name: str, weights: str | None, parity: bool, image_size: int | None) -> Preprocess:
    spec = eval_transform_spec(model_name, weights)
    if parity:
        return Preprocess.for_parity(image_size or spec.crop)
    return Preprocess.corrected(spec.resize, image_size or spec.crop, spec.mean, spec.std,
                                interpolation=InterpolationMode(spec.interpolation))


def open_dataset(data: DataRequest, preprocess: Preprocess):
    if data.data_dir is None:
        raise UsageError(f"--data-dir is required for --dataset {data.dataset}")
    if data.dataset == "imagenet":
        return ImageNetVal(data.data_dir, bbox_dir=data.bbox_dir, preprocess=preprocess,
                           limit_per_class=data.limit_per_class)
    if data.dataset == "voc":
        return VOCPairs(data.data_dir, year=data.voc_year, image_set=data.image_set, preprocess=preprocess,
                        skip_difficult=not data.include_difficult)
    return BoxFolder(data.data_dir, preprocess)


def resolve_layer(model: nn.Module, model_name: str, layer: str | None) -> tuple[str, nn.Module]:
    name = layer or default_target_layer(model_name)
    return name, get_layer(model, name)


def prepare_inputs(data: DataRequest, model: ModelRequest, *, parity: bool, device: torch.device,
                   quiet: bool = False) -> ScoreInputs:
    if data.dataset not in DATASETS:
        raise UsageError(f"unknown dataset {data.dataset!r}; expected one of {', '.join(DATASETS)}")
    if data.dataset == "shapes" and model.name is None:
        default = load_shapes_default(data.shapes, device=device, quiet=quiet)
        layer_name, layer = resolve_layer(default.model, "shapes_cnn", model.layer or default.layer_name)
        return ScoreInputs(default.model, "shapes_cnn", layer_name, layer, default.dataset,
                           planted=default.planted, identity=default.identity)
    if model.name is None:
        raise UsageError(f"--model is required for --dataset {data.dataset} (e.g. --model resnet50 --weights DEFAULT)")
    net = build_model(model.name, model.weights, model.num_classes)
    layer_name, layer = resolve_layer(net, model.name, model.layer)
    identity = {"dataset": data.dataset, "model": model.name, "weights": str(model.weights), "layer": layer_name}
    if data.dataset == "shapes":
        default = load_shapes_default(data.shapes, device=device, quiet=quiet)
        return ScoreInputs(net, model.name, layer_name, layer, default.dataset, planted=default.planted,
                           identity={**default.identity, **identity})
    dataset = open_dataset(data, preprocess_for(model.name, model.weights, parity, data.image_size))
    csv_names = [csv_name(n) for n in dataset.class_names] if data.dataset == "imagenet" else None
    return ScoreInputs(net, model.name, layer_name, layer, dataset, class_csv_names=csv_names, identity=identity)
