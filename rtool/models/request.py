"""Which model a run explains, as the CLI (or a script) asks for it: building it, its target layer, its
preprocessing, its identity, and whether its outputs fit a dataset's classes."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torchvision.transforms import InterpolationMode

from rtool.data.transforms import Preprocess
from rtool.engine import stable_hash
from rtool.errors import UsageError
from rtool.models.layers import default_target_layer, get_layer
from rtool.models.zoo import build_model, eval_transform_spec


@dataclass
class ModelRequest:
    name: str | None = None           # None: the dataset's default (the trained shapes CNN for `shapes`)
    weights: str | None = None
    num_classes: int | None = None
    layer: str | None = None


@dataclass
class LoadedModel:
    model: nn.Module
    name: str
    layer_name: str
    layer: nn.Module
    identity: dict = field(default_factory=dict)  # what made it (for result keys and summaries)


def resolve_layer(model: nn.Module, model_name: str, layer: str | None) -> tuple[str, nn.Module]:
    """(dotted path, module) of `layer`, or of the model's default target layer when None."""
    name = layer or default_target_layer(model_name)
    return name, get_layer(model, name)


def load_model(request: ModelRequest) -> LoadedModel:
    """Build the requested zoo model with its weights and find its layer (one-line errors for bad names)."""
    if request.name is None:
        raise UsageError("a model name is required (e.g. --model resnet50 --weights DEFAULT)")
    net = build_model(request.name, request.weights, request.num_classes)
    layer_name, layer = resolve_layer(net, request.name, request.layer)
    identity = {"model": request.name, "weights": str(request.weights), "layer": layer_name}
    return LoadedModel(net, request.name, layer_name, layer, identity)


def preprocess_for(model_name: str, weights: str | None, parity: bool, image_size: int | None) -> Preprocess:
    """The model's own evaluation transform, or with `parity` the authors' (Resize = crop = S, CIFAR stats)."""
    spec = eval_transform_spec(model_name, weights)
    if parity:
        return Preprocess.for_parity(image_size or spec.crop)
    return Preprocess.corrected(spec.resize, image_size or spec.crop, spec.mean, spec.std,
                                interpolation=InterpolationMode(spec.interpolation))


def model_fingerprint(model: nn.Module) -> str:
    """Cheap identity of the weights: shapes and two sums per tensor (for resume keys, not security)."""
    parts = []
    for name, tensor in model.state_dict().items():
        t = tensor.detach().double()
        parts.append([name, list(t.shape), round(float(t.sum()), 6), round(float(t.abs().sum()), 6)])
    return stable_hash(parts)


def check_labels_fit(logits: torch.Tensor, labels: torch.Tensor, model_name: str, class_names: list[str]) -> None:
    """A one-line error when the dataset needs a class index the model has no output for."""
    outputs = logits.shape[1]
    worst = int(labels.max()) if labels.numel() else -1
    if worst >= outputs:
        name = class_names[worst] if worst < len(class_names) else str(worst)
        raise UsageError(f"model {model_name} has {outputs} outputs but the dataset needs class index {worst} "
                         f"({name}); expected a model with at least {worst + 1} classes")
