"""Grad-CAM++ and SmoothGrad-CAM++ as the authors ran them (spec section 4), batched over images."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rtool.errors import UsageError
from rtool.score.saliency._common import (
    ActivationCapture,
    check_images_and_targets,
    check_logits,
    check_model_and_layer,
    check_target_range,
    minmax_normalize,
    upsample,
)

TargetPicker = Callable[[torch.Tensor], torch.Tensor]  # logits [N, K] -> class ids [N]


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")


def _check_grad_allowed() -> None:
    if torch.is_inference_mode_enabled():  # enable_grad() cannot lift inference mode
        raise UsageError("Grad-CAM++ needs gradients; call it outside torch.inference_mode()")


def gradcampp_weights(activations: torch.Tensor, gradients: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Channel weights w_k [N, C] of Grad-CAM++ from A, g = d score / dA ([N, C, h, w]) and the scores [N].

    alpha = g^2 / (D' + 1e-7) with D = 2 g^2 + sum_xy(A g^3) and D' = D where D != 0, else 1;
    w_k = sum_xy(alpha * ReLU(exp(score) * g)). exp(score) is kept literally (it overflows for logits > 88).
    """
    g2 = gradients.pow(2)
    denominator = 2 * g2 + (activations * gradients.pow(3)).sum(dim=(2, 3), keepdim=True)
    denominator = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = g2 / (denominator + 1e-7)
    positive = (scores.exp()[:, None, None, None] * gradients).relu()
    return (alpha * positive).sum(dim=(2, 3))


def _gradcampp_feature_maps(
    model: nn.Module, layer: nn.Module, images: torch.Tensor, pick: TargetPicker
) -> torch.Tensor:
    """Min-max-normalised Grad-CAM++ maps at feature resolution [N, h, w] for one forward/backward."""
    with ActivationCapture(layer, for_grad=True) as capture, torch.enable_grad():
        logits = check_logits(model(images))
        activations = capture.take()
        targets = pick(logits)
        scores = logits.gather(1, targets[:, None])[:, 0]
        # Per-image scores are independent in eval mode, so one backward of their sum gives every image's g.
        (gradients,) = torch.autograd.grad(scores.sum(), activations)
    with torch.no_grad():
        activations = activations.detach().float()
        weights = gradcampp_weights(activations, gradients.float(), scores.detach().float())
        cam = torch.einsum("nc,nchw->nhw", weights, activations).relu()
        return minmax_normalize(cam)


def grad_cam_pp(
    model: nn.Module,
    layer: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int = 64,
) -> torch.Tensor:
    """Grad-CAM++ maps [B, H, W] (float32) of `images` [B, 3, H, W] for the logits of `targets` [B].

    Spec section 4: backprop the target-class logit to `layer`'s output A, weights from gradcampp_weights,
    L = ReLU(sum_k w_k A_k), min-max at feature resolution (no epsilon: a constant map gives NaN, which the
    robustness score counts as RS = 0), then a bilinear (align_corners=False) resize to H x W with no
    re-normalisation. Images are processed `batch_size` at a time; the result equals per-image runs.
    """
    _check_batch_size(batch_size)
    check_model_and_layer(model, layer)
    targets = check_images_and_targets(images, targets)
    _check_grad_allowed()
    size = (images.shape[-2], images.shape[-1])

    def pick_targets(first: int) -> TargetPicker:
        def pick(logits: torch.Tensor) -> torch.Tensor:
            chunk = targets[first:first + logits.shape[0]]
            check_target_range(chunk, logits.shape[1])
            return chunk

        return pick

    maps = [
        _gradcampp_feature_maps(model, layer, images[first:first + batch_size], pick_targets(first))
        for first in range(0, images.shape[0], batch_size)
    ]
    with torch.no_grad():
        return upsample(torch.cat(maps), size)


def smooth_grad_cam_pp(
    model: nn.Module,
    layer: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    n_samples: int = 25,
    std_spread: float = 0.15,
    seed: int = 0,
    *,
    parity: bool = False,
    batch_size: int = 64,
) -> torch.Tensor:
    """SmoothGrad-CAM++ maps [B, H, W]: the mean of Grad-CAM++ maps of `n_samples` noisy copies per image.

    parity=True reproduces the authors' code, two quirks included:
      - the noise std is std_spread / (x.max() - x.min()) per image: it DIVIDES by the range (the SmoothGrad
        paper multiplies);
      - each copy is explained for that copy's PREDICTED class; `targets` is ignored (the repo flipped a
        condition, so the ground-truth class never reaches the method).
    parity=False uses std = std_spread * (x.max() - x.min()) and the ground-truth `targets`.
    Each copy's map is min-max normalised at feature resolution (NaN if constant), the copies are averaged, and
    the mean is resized bilinearly to H x W. Noise: `n_samples` standard-normal fields drawn from a CPU
    generator seeded with `seed`, shared by every image of the batch (scaled by that image's std), so an
    image's map depends on the seed but not on which batch it was in.
    """
    _check_batch_size(batch_size)
    if not isinstance(n_samples, int) or n_samples < 1:
        raise UsageError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not std_spread >= 0:
        raise UsageError(f"std_spread must be >= 0, got {std_spread!r}")
    check_model_and_layer(model, layer)
    targets = check_images_and_targets(images, targets)
    _check_grad_allowed()
    count = images.shape[0]
    size = (images.shape[-2], images.shape[-1])

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = torch.randn((n_samples, *images.shape[1:]), generator=generator).to(images.device, images.dtype)
    spread = (images.flatten(1).amax(dim=1) - images.flatten(1).amin(dim=1)).detach()
    std = std_spread / spread if parity else std_spread * spread

    # rows = (copy, image) pairs, copy-major, processed batch_size at a time
    row_copy = torch.arange(n_samples, device=images.device).repeat_interleave(count)
    row_image = torch.arange(count, device=images.device).repeat(n_samples)
    total = None
    for first in range(0, row_copy.numel(), batch_size):
        copies, owners = row_copy[first:first + batch_size], row_image[first:first + batch_size]
        noisy = images[owners].detach() + std[owners, None, None, None] * noise[copies]

        def pick(logits: torch.Tensor, owners: torch.Tensor = owners) -> torch.Tensor:
            if parity:
                return logits.detach().argmax(dim=1)
            chosen = targets[owners]
            check_target_range(chosen, logits.shape[1])
            return chosen

        cams = _gradcampp_feature_maps(model, layer, noisy, pick)
        if total is None:
            total = torch.zeros((count, *cams.shape[1:]), dtype=torch.float32, device=images.device)
        total.index_add_(0, owners, cams)
    with torch.no_grad():
        return upsample(total / n_samples, size)
