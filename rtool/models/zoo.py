"""Classifiers by name: torchvision's ImageNet models and rtool's two small models.

Nothing here downloads. Named weights ("DEFAULT", "IMAGENET1K_V1", ...) are read from the torch hub cache
where torchvision would have put them; when the file is missing, `WeightsUnavailable` says which file to put
where. A path loads a user's checkpoint (a state_dict) with `torch.load(..., weights_only=True)`.
"""
from __future__ import annotations

import difflib
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from rtool.errors import UsageError, WeightsUnavailable
from rtool.models.small import CornerConvNet, ShapesCNN

# Convolutional ImageNet classifiers from torchvision (each has a spatial layer for CAM-style analyses).
TORCHVISION_MODELS: tuple[str, ...] = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d",
    "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "googlenet", "inception_v3", "densenet121", "squeezenet1_1", "shufflenet_v2_x1_0",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny", "regnet_y_400mf",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
)
SMALL_MODELS: dict[str, type[nn.Module]] = {"shapes_cnn": ShapesCNN, "corner_convnet": CornerConvNet}
MODEL_NAMES: tuple[str, ...] = TORCHVISION_MODELS + tuple(SMALL_MODELS)

# These two carry auxiliary heads; torchvision's pretrained files were trained with transform_input=True.
_AUX_MODELS = {"inception_v3": ("AuxLogits.",), "googlenet": ("aux1.", "aux2.")}
_CHECKPOINT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl"}
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_KEY_PREFIXES = ("module.", "_orig_mod.")


@dataclass(frozen=True)
class TransformSpec:
    """How a model's evaluation images are prepared: resize the short side, centre-crop, scale to [0,1], normalise."""

    resize: int
    crop: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    def transform(self) -> Callable:
        """The torchvision transform for PIL images (or uint8 tensors) → normalised float tensors."""
        from torchvision.transforms import v2

        return v2.Compose([
            v2.Resize(self.resize, interpolation=v2.InterpolationMode(self.interpolation), antialias=True),
            v2.CenterCrop(self.crop),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(self.mean), list(self.std)),
        ])


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_SMALL_TRANSFORMS = {
    # The embedded datasets normalise themselves (shapes: training-set statistics; digits: none, as the reference).
    "shapes_cnn": TransformSpec(64, 64, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "corner_convnet": TransformSpec(28, 28, (0.0,), (1.0,)),
}


# ----------------------------------------------------------------------------------------------- names

def check_model_name(name: str) -> str:
    """`name` normalised (lower case), or UsageError listing the closest known names."""
    key = str(name).strip().lower().replace("-", "_")
    if key in MODEL_NAMES:
        return key
    close = difflib.get_close_matches(key, MODEL_NAMES, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known models: {', '.join(MODEL_NAMES)}"
    raise UsageError(f"unknown model {name!r}; {hint}")


def weights_enum(name: str) -> type[WeightsEnum] | None:
    """torchvision's weights enum for a model (None for rtool's small models)."""
    name = check_model_name(name)
    if name in SMALL_MODELS:
        return None
    return torchvision.models.get_model_weights(name)


def _named_weights(name: str, weights: str) -> WeightsEnum | None:
    """The enum member `weights` names ("DEFAULT", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"), else None."""
    enum = weights_enum(name)
    text = weights.strip()
    if enum is None:
        return None
    if text.startswith(enum.__name__ + "."):
        text = text[len(enum.__name__) + 1:]
    try:
        return enum[text.upper()]
    except KeyError:
        return None


def input_normalization(name: str, weights: str | os.PathLike | None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std) the model expects its [0, 1] input normalised with, when `weights` are torchvision's named
    weights (trained on normalised ImageNet images); None for no weights, a checkpoint or a small model."""
    if weights is None or not isinstance(weights, str) or name in _SMALL_TRANSFORMS:
        return None
    if _named_weights(check_model_name(name), weights) is None:
        return None
    spec = eval_transform_spec(name, weights)
    return spec.mean, spec.std


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or Path(text).suffix.lower() in _CHECKPOINT_SUFFIXES or text.startswith("~")


def hub_checkpoint_path(weights: WeightsEnum) -> Path:
    """Where torchvision would cache the file of `weights`: `<torch.hub.get_dir()>/checkpoints/<file name>`."""
    file_name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


# ------------------------------------------------------------------------------------------ checkpoints

def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a user's checkpoint file, loaded safely (weights_only=True).

    Accepts a plain state_dict or a dict holding one under "state_dict"/"model_state_dict"/"model"/"net"/
    "weights"; strips DataParallel's "module." and torch.compile's "_orig_mod." prefixes.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"checkpoint file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        if unsafe is None:
            raise UsageError(f"checkpoint {path} is not a readable PyTorch file (corrupt or another format)") from None
        raise UsageError(f"checkpoint {path} cannot be loaded safely with weights_only=True (it pickles "
                         f"{unsafe.group(1)}); save model.state_dict() instead of the whole model") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"checkpoint {path} is not a readable PyTorch file ({type(exc).__name__})") from None
    state = _unwrap_state_dict(obj)
    if state is None:
        raise UsageError(f"checkpoint {path} holds no state_dict (expected a dict of tensors, "
                         f"possibly under one of the keys {', '.join(_WRAPPER_KEYS)})")
    return state


def _unwrap_state_dict(obj: object) -> dict[str, torch.Tensor] | None:
    if not isinstance(obj, dict) or not obj:
        return None
    if all(isinstance(value, torch.Tensor) for value in obj.values()):
        state = {}
        for key, value in obj.items():
            key = str(key)
            stripped = True
            while stripped:
                stripped = False
                for prefix in _KEY_PREFIXES:
                    if key.startswith(prefix):
                        key, stripped = key[len(prefix):], True
            state[key] = value
        return state
    for wrapper in _WRAPPER_KEYS:
        if isinstance(obj.get(wrapper), dict):
            return _unwrap_state_dict(obj[wrapper])
    return None


def _head_key(model: nn.Module) -> str | None:
    """The state_dict key of the classifier head's weight: the last parameterised module with a 2D+ weight."""
    head = None
    for module_name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.ndim >= 2:
            head = f"{module_name}.weight" if module_name else "weight"
    return head


def num_classes_of(model: nn.Module) -> int:
    """Number of outputs of a classifier (the first dimension of its head's weight)."""
    key = _head_key(model)
    if key is None:
        raise UsageError(f"cannot tell the number of classes of {type(model).__name__}: it has no weight matrix")
    return int(model.get_parameter(key).shape[0])


def _is_aux(name: str, key: str) -> bool:
    return key.startswith(_AUX_MODELS.get(name, ()))


def _fit_report(name: str, model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    own = model.state_dict()
    missing = [key for key in own if key not in state and not _is_aux(name, key)]
    unexpected = [key for key in state if key not in own]
    mismatched = [f"{key}: checkpoint {list(state[key].shape)} vs model {list(own[key].shape)}"
                  for key in own if key in state and state[key].shape != own[key].shape]
    return missing, unexpected, mismatched


# ------------------------------------------------------------------------------------------ building

def _construct(name: str, num_classes: int | None, random_init: bool, pretrained_categories: int | None = None) -> nn.Module:
    if name in SMALL_MODELS:
        return SMALL_MODELS[name](num_classes=num_classes or 10)
    kwargs: dict = {}
    classes = num_classes or pretrained_categories
    if classes is not None:
        kwargs["num_classes"] = classes
    if name in _AUX_MODELS:
        # Same layout as torchvision's pretrained files, so a checkpoint path behaves like the named weights.
        kwargs.update(transform_input=True, aux_logits=True, init_weights=random_init)
    return torchvision.models.get_model(name, weights=None, **kwargs)


def _drop_aux_heads(name: str, model: nn.Module) -> nn.Module:
    if name == "inception_v3":
        model.aux_logits, model.AuxLogits = False, None
    elif name == "googlenet":
        model.aux_logits, model.aux1, model.aux2 = False, None, None
    return model


def _load(name: str, state: dict[str, torch.Tensor], num_classes: int | None, source: str) -> nn.Module:
    model = _construct(name, num_classes, random_init=False)
    missing, unexpected, mismatched = _fit_report(name, model, state)
    head = _head_key(model)
    if mismatched and num_classes is None and head in state and state[head].ndim >= 2:
        # A fine-tuned checkpoint with another number of classes: take the count from its head.
        model = _construct(name, int(state[head].shape[0]), random_init=False)
        missing, unexpected, mismatched = _fit_report(name, model, state)
    if missing or unexpected or mismatched:
        parts = [f"{len(items)} {label} (e.g. {items[0]})"
                 for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                                      ("shape mismatches", mismatched)) if items]
        raise UsageError(f"checkpoint {source} does not fit model {name}: {'; '.join(parts)}")
    model.load_state_dict(state, strict=False)  # strictness checked above (aux heads may be absent)
    return _drop_aux_heads(name, model)


def build_model(name: str, weights: str | os.PathLike | None = None, num_classes: int | None = None) -> nn.Module:
    """A classifier by name, in eval mode.

    weights: None (random init), "DEFAULT" or a torchvision weights name such as "IMAGENET1K_V1" (read from
        the torch hub cache, never downloaded), or a path to a checkpoint (a state_dict).
    num_classes: output classes; None keeps the default (1000, or 10 for the small models) or, for a
        checkpoint, the count of its head.
    """
    name = check_model_name(name)
    if num_classes is not None and num_classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes}")
    if weights is None:
        return _drop_aux_heads(name, _construct(name, num_classes, random_init=True)).eval()

    text = os.fspath(weights)
    named = _named_weights(name, text) if isinstance(weights, str) else None
    if named is not None:
        return _load_named(name, named, num_classes).eval()
    path = Path(text).expanduser()
    if path.is_file():
        return _load(name, read_state_dict(path), num_classes, str(path)).eval()
    if _looks_like_path(text):
        raise UsageError(f"checkpoint file not found: {path}")
    enum = weights_enum(name)
    if enum is None:
        raise UsageError(f"model {name} has no published weights, got weights={text!r}; "
                         "pass a checkpoint path or no weights (rtool trains it on its embedded dataset)")
    known = ", ".join(enum.__members__)
    raise UsageError(f"unknown weights {text!r} for {name}; expected one of {known} or a checkpoint path")


def _load_named(name: str, weights: WeightsEnum, num_classes: int | None) -> nn.Module:
    categories = len(weights.meta["categories"])
    if num_classes is not None and num_classes != categories:
        raise UsageError(f"weights {weights} have {categories} classes, got num_classes={num_classes}; "
                         "fine-tune and pass the checkpoint path instead")
    path = hub_checkpoint_path(weights)
    if not path.is_file():
        raise WeightsUnavailable(
            f"weights {weights} for {name} are not on disk and rtool does not download: put {path.name} "
            f"(from {weights.url}) at {path}, or pass --weights PATH to a checkpoint file")
    return _load(name, read_state_dict(path), categories, str(path))


# ------------------------------------------------------------------------------------------ transforms

def eval_transform_spec(name: str, weights: str | os.PathLike | None = None) -> TransformSpec:
    """Evaluation preprocessing for `name` with `weights`, taken from torchvision's preset for those weights.

    For no weights or a checkpoint path, the model's first (original) torchvision recipe is used, e.g.
    resize 256 / crop 224 with ImageNet statistics, 342/299 for inception_v3, 320/300 for efficientnet_b3.
    """
    name = check_model_name(name)
    if name in _SMALL_TRANSFORMS:
        return _SMALL_TRANSFORMS[name]
    enum = weights_enum(name)
    member = _named_weights(name, weights) if isinstance(weights, str) else None
    if member is None:
        member = next(iter(enum), None) if enum is not None else None
    if member is None:
        return TransformSpec(256, 224, _IMAGENET_MEAN, _IMAGENET_STD)
    preset = member.transforms()
    return TransformSpec(
        resize=int(preset.resize_size[0]),
        crop=int(preset.crop_size[0]),
        mean=tuple(float(v) for v in preset.mean),
        std=tuple(float(v) for v in preset.std),
        interpolation=preset.interpolation.value,
    )
