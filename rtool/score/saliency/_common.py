"""Shared pieces of the saliency methods: input checks, the activation hook, min-max normalisation."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtool.errors import UsageError


def check_model_and_layer(model: nn.Module, layer: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise UsageError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(layer, nn.Module):
        raise UsageError(f"layer must be a torch.nn.Module of the model, got {type(layer).__name__}")
    if not any(module is layer for module in model.modules()):
        raise UsageError(f"layer {type(layer).__name__} is not a submodule of the model; pass one of model.modules()")
    if model.training:
        # Batched masked/backward passes rely on every sample being independent (BatchNorm running stats,
        # no dropout); the caller owns the mode, so we refuse instead of flipping it.
        raise UsageError("model is in training mode; call model.eval() before computing saliency maps")


def check_images_and_targets(images: torch.Tensor, targets: torch.Tensor | int) -> torch.Tensor:
    """Validates the batch and returns the targets as int64 [B] on the images' device."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise UsageError(f"images must be a floating-point tensor [B, C, H, W], got {shape}")
    if images.shape[0] == 0 or images.shape[-1] == 0 or images.shape[-2] == 0:
        raise UsageError(f"images must hold at least one non-empty image, got shape {tuple(images.shape)}")
    targets = torch.as_tensor(targets)
    if targets.dim() == 0:
        targets = targets.reshape(1)
    if targets.dim() != 1 or targets.numel() != images.shape[0] or targets.is_floating_point() or targets.is_complex():
        raise UsageError(
            f"targets must be integer class ids of shape [{images.shape[0]}], got {targets.dtype} {tuple(targets.shape)}"
        )
    return targets.to(device=images.device, dtype=torch.long)


def check_target_range(targets: torch.Tensor, num_classes: int) -> None:
    bad = (targets < 0) | (targets >= num_classes)
    if bool(bad.any()):
        value = int(targets[bad][0])
        raise UsageError(f"target class {value} is out of range; the model has {num_classes} classes (0..{num_classes - 1})")


def check_logits(logits: object) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise UsageError(f"model output must be logits [B, classes], got {shape}")
    return logits


class ActivationCapture:
    """Forward hook on `layer` that keeps its output of the last model call.

    ``for_grad=False``: stores a detached copy (a copy, because later in-place ops such as ReLU(inplace=True)
    would otherwise change it). ``for_grad=True``: replaces the output by a fresh leaf that requires grad, so
    d(score)/d(activation) is available even when the model's parameters are frozen; the rest of the model
    receives a clone of that leaf, so in-place ops downstream cannot touch it.
    """

    def __init__(self, layer: nn.Module, for_grad: bool = False):
        self.layer = layer
        self.for_grad = for_grad
        self.activation: torch.Tensor | None = None
        self.calls = 0
        self._handle = None

    def _hook(self, module, inputs, output):
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise UsageError(f"layer {type(module).__name__} must output a 4-D tensor [B, C, h, w], got {shape}")
        self.calls += 1
        if self.for_grad:
            leaf = output.detach().requires_grad_(True)
            self.activation = leaf
            return leaf.clone()
        self.activation = output.detach().clone()
        return None

    def __enter__(self) -> "ActivationCapture":
        self._handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def take(self) -> torch.Tensor:
        """The activation of the one model call since the last take(); the layer must have run exactly once."""
        calls, activation = self.calls, self.activation
        self.calls, self.activation = 0, None
        if calls != 1 or activation is None:
            raise UsageError(
                f"layer {type(self.layer).__name__} ran {calls} times in one forward pass; pick a layer that runs exactly once"
            )
        return activation


def minmax_normalize(maps: torch.Tensor) -> torch.Tensor:
    """(L - min) / (max - min) per map over the last two dims, with no epsilon: a constant map gives NaN.

    NaN is kept on purpose (the authors' behaviour); the robustness score treats a NaN map's RS as 0.
    """
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    return (maps - lo) / (hi - lo)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear (align_corners=False) resize of [N, h, w] maps to [N, *size]."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
