"""Find a layer of a model by its dotted name ("layer4.2.conv3") and know each zoo model's CAM target."""
from __future__ import annotations

import difflib
import re
from functools import lru_cache

import torch
from torch import nn

from rtool.errors import UsageError
from rtool.models.zoo import SMALL_MODELS, _construct, check_model_name

_BRACKETS = re.compile(r"\[(\d+)\]")

# Targets fixed by name; the rest are derived from the architecture (see default_target_layer).
_FIXED_TARGETS = {
    "resnet18": "layer4.1.conv2",
    "resnet34": "layer4.2.conv2",
    "resnet50": "layer4.2.conv3",
    "resnet101": "layer4.2.conv3",
    "resnet152": "layer4.2.conv3",  # the robustness-score reference hooks layer4[2].conv3 (before bn3 and the add)
    "wide_resnet50_2": "layer4.2.conv3",
    "resnext50_32x4d": "layer4.2.conv3",
    "alexnet": "avgpool",
    "googlenet": "inception5b",
    "inception_v3": "Mixed_7c",
    "densenet121": "features",
    "shufflenet_v2_x1_0": "conv5",
    "convnext_tiny": "features.7",
    "regnet_y_400mf": "trunk_output",
    "squeezenet1_1": "features.12",
}


def normalize_layer_path(path: str) -> str:
    """"layer4[2].conv3" → "layer4.2.conv3" (accepts PyTorch's indexing syntax too)."""
    return _BRACKETS.sub(r".\1", str(path).strip()).strip(".")


def layer_names(model: nn.Module) -> list[str]:
    """Every addressable sub-module's dotted name, in registration order."""
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, dotted_path: str) -> nn.Module:
    """The sub-module at `dotted_path` ("layer4.2.conv3"; integers index Sequentials), or UsageError with near names."""
    path = normalize_layer_path(dotted_path)
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    names = layer_names(model)
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.4)
    if not close:
        close = [name for name, _ in model.named_children()][:5]
    raise UsageError(f"layer {dotted_path!r} not found in {type(model).__name__}; "
                     f"nearest names: {', '.join(close)}")


@lru_cache(maxsize=None)
def default_target_layer(model_name: str) -> str:
    """The layer CAM-style analyses hook for a zoo model: its last spatial feature block.

    resnets: the last conv of the last block of layer4; alexnet: avgpool (256x6x6); vgg: the last conv in
    features; efficientnet: features.8.0, the head conv before its BN and activation (the reference's
    `_conv_head`); mobilenets: their last feature block; the small models: their last conv block.
    """
    name = check_model_name(model_name)
    if name in SMALL_MODELS:
        return SMALL_MODELS[name].TARGET_LAYER
    if name in _FIXED_TARGETS:
        return _FIXED_TARGETS[name]
    with torch.device("meta"):  # architecture only: no memory, no init cost
        model = _construct(name, None, random_init=False)
    if name.startswith("efficientnet"):
        last = len(model.features) - 1
        return f"features.{last}.0"
    if name.startswith("mobilenet"):
        return f"features.{len(model.features) - 1}"
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    return convs[-1]
