"""Saliency maps for `rtool score`: Score-CAM (the authors' variant or corrected), Grad-CAM++, SmoothGrad-CAM++.

Every method returns maps [B, H, W] in [0, 1] for the given target classes, explained at one layer's output.
A map that normalises a constant is NaN (the authors' behaviour); the robustness score counts it as RS = 0.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from rtool.errors import UsageError
from rtool.score.saliency.gradcam import grad_cam_pp, gradcampp_weights, smooth_grad_cam_pp
from rtool.score.saliency.scorecam import ScoreCamResult, auto_batch_size, score_cam, score_cam_reference

SALIENCY_METHODS = ("scorecam", "gradcampp", "smoothgradcampp")

_OPTIONS = {
    "scorecam": {"mode", "batch_size", "skip_zero_channels", "weight", "autocast", "top_k", "channels_last", "compile", "progress"},
    "gradcampp": {"batch_size"},
    "smoothgradcampp": {"n_samples", "std_spread", "seed", "batch_size"},
}


@dataclass
class SaliencyResult:
    """maps [B, H, W] float32 (NaN where the normalised map was constant) and run statistics."""

    maps: torch.Tensor
    stats: dict[str, object] = field(default_factory=dict)


def saliency_maps(
    model: nn.Module,
    layer: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    method: str = "scorecam",
    parity: bool = False,
    **options,
) -> SaliencyResult:
    """Saliency maps of `images` [B, 3, H, W] for `targets` [B] at `layer` (a module of `model`, in eval mode).

    parity=True reproduces the authors' runs: Score-CAM mode "parity" and SmoothGrad-CAM++ with its quirks
    (noise std divides by the image range; the predicted class is explained). parity=False: Score-CAM with
    min-max masks ("minmax") and SmoothGrad-CAM++ with the SmoothGrad std and the given targets. Grad-CAM++ is
    the same either way. `options` go to the method: see score_cam, grad_cam_pp and smooth_grad_cam_pp.
    """
    if method not in SALIENCY_METHODS:
        raise UsageError(f"unknown saliency method {method!r}; expected one of {', '.join(SALIENCY_METHODS)}")
    unknown = sorted(set(options) - _OPTIONS[method])
    if unknown:
        raise UsageError(
            f"option {unknown[0]!r} does not apply to {method}; expected one of {', '.join(sorted(_OPTIONS[method]))}"
        )
    start = time.perf_counter()
    if method == "scorecam":
        options.setdefault("mode", "parity" if parity else "minmax")
        result = score_cam(model, layer, images, targets, **options)
        stats: dict[str, object] = {"method": method, "parity": parity, "mode": options["mode"], **result.stats()}
        maps = result.maps
    elif method == "gradcampp":
        maps = grad_cam_pp(model, layer, images, targets, **options)
        stats = {"method": method, "parity": parity}
    else:
        maps = smooth_grad_cam_pp(model, layer, images, targets, parity=parity, **options)
        stats = {"method": method, "parity": parity, "n_samples": options.get("n_samples", 25)}
    stats["seconds"] = time.perf_counter() - start
    return SaliencyResult(maps=maps, stats=stats)


__all__ = [
    "SALIENCY_METHODS",
    "SaliencyResult",
    "ScoreCamResult",
    "auto_batch_size",
    "grad_cam_pp",
    "gradcampp_weights",
    "saliency_maps",
    "score_cam",
    "score_cam_reference",
    "smooth_grad_cam_pp",
]
