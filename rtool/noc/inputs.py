"""What `rtool noc mce` runs on: the model (and a measured reference model) and the clean images.

Datasets: `shapes` (the embedded default: generated images and the small CNN `rtool score` trains and
caches), `imagenet` (val class folders; the model's Resize -> CenterCrop, unnormalised until after the
corruption) and `imagenet-c` (pre-corrupted folders, CenterCrop only, as the ImageNet-C evaluation).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from rtool.data.imagenet_c import SEVERITIES, imagenet_c_corruptions, imagenet_c_images, imagenet_val_images
from rtool.data.shapes import ShapesConfig, load_shapes
from rtool.errors import UsageError
from rtool.models import ModelRequest, eval_transform_spec, load_model
from rtool.noc.images import Crop, FileImages, ImageSource, TensorImages
from rtool.noc.references import measured_model
from rtool.score.shapes_default import load_shapes_default

MCE_DATASETS = ("shapes", "imagenet", "imagenet-c")
SHAPES_MODEL = "shapes_cnn"


@dataclass
class MceInputs:
    model: nn.Module
    model_name: str
    source: ImageSource | None = None                                       # shapes, imagenet
    sources: dict[tuple[str, int], ImageSource] = field(default_factory=dict)  # imagenet-c
    reference_model: nn.Module | None = None
    reference_name: str | None = None
    identity: dict = field(default_factory=dict)


def _zoo_crop(model: ModelRequest, image_size: int | None) -> tuple[Crop, tuple, tuple]:
    spec = eval_transform_spec(model.name, model.weights)
    if image_size is None:
        return Crop(spec.resize, spec.crop, spec.interpolation), spec.mean, spec.std
    return Crop(round(image_size * spec.resize / spec.crop), image_size, spec.interpolation), spec.mean, spec.std


def prepare_mce_inputs(dataset: str, data_dir: Path | None, model: ModelRequest, *, reference: str,
                       reference_weights: str | None = None, image_size: int | None = None,
                       limit_per_class: int | None = None, corruptions: tuple[str, ...] | None = None,
                       shapes: ShapesConfig = ShapesConfig(), device: torch.device = torch.device("cpu"),
                       quiet: bool = False) -> MceInputs:
    if dataset not in MCE_DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}; expected one of {', '.join(MCE_DATASETS)}")
    reference_name = measured_model(reference)
    if dataset == "shapes":
        wants_default = model.name is None or reference_name == SHAPES_MODEL
        default = load_shapes_default(shapes, device=device, quiet=quiet) if wants_default else None
        ds = default.dataset if default is not None else load_shapes(shapes, "val")
        source = TensorImages(ds.data.images, ds.data.labels, ds.class_names, ds.mean, ds.std)
        if model.name is None:
            net, name, identity = default.model, SHAPES_MODEL, dict(default.identity)
        else:
            loaded = load_model(model)
            net, name = loaded.model, loaded.name
            identity = {"dataset": "shapes", "shapes": asdict(shapes), **loaded.identity}
        inputs = MceInputs(net, name, source=source, identity=identity)
        if reference_name == SHAPES_MODEL and reference_weights is None:  # the embedded default's trained CNN
            inputs.reference_model, inputs.reference_name = default.model, SHAPES_MODEL
        elif reference_name is not None:
            inputs.reference_model = load_model(ModelRequest(reference_name, reference_weights, model.num_classes)).model
            inputs.reference_name = reference_name
        return inputs

    if model.name is None:
        raise UsageError(f"--model is required for --dataset {dataset} (e.g. --model resnet50 --weights DEFAULT)")
    if data_dir is None:
        raise UsageError(f"--data-dir is required for --dataset {dataset}")
    loaded = load_model(model)
    crop, mean, std = _zoo_crop(model, image_size)
    inputs = MceInputs(loaded.model, loaded.name, identity={"dataset": dataset, **loaded.identity})
    if dataset == "imagenet":
        inputs.source = FileImages(imagenet_val_images(data_dir, limit_per_class), crop, mean, std)
    else:
        names = corruptions or tuple(imagenet_c_corruptions(data_dir))
        centre = Crop(None, crop.crop)  # ImageNet-C images are already resized: CenterCrop only (its test.py)
        inputs.sources = {(name, s): FileImages(imagenet_c_images(data_dir, name, s, limit_per_class), centre, mean, std)
                          for name in names for s in SEVERITIES}
    if reference_name is not None:
        weights = reference_weights if reference_weights is not None else model.weights
        inputs.reference_model = load_model(ModelRequest(reference_name, weights, model.num_classes)).model
        inputs.reference_name = reference_name
    return inputs

