"""Score-CAM: the authors' variant (parity), corrected min-max masks, and a plain reference loop.

Fast path (exact, spec section 9): masked inputs come from rtool.ops.scorecam_masks for (image, channel) pairs
of the whole batch packed into rows of `batch_size`; the weighted combination is done at feature resolution and
upsampled once (bilinear resize is linear); channels whose mask is identically zero are not forwarded.
"""
from __future__ import annotations

import contextlib
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rtool.engine import channels_last_model
from rtool.errors import UsageError
from rtool.ops import scorecam_masks
from rtool.score.saliency._common import (
    ActivationCapture,
    check_images_and_targets,
    check_logits,
    check_model_and_layer,
    check_target_range,
    minmax_normalize,
    upsample,
)

SCORECAM_MODES = ("parity", "minmax")
SCORECAM_WEIGHTS = ("softmax", "sigmoid")
AUTOCAST_DTYPES = {"bf16": torch.bfloat16}
MINMAX_EPS = 1e-8


@dataclass
class ScoreCamResult:
    """Score-CAM maps [B, H, W] (float32, [0, 1]; NaN where the combined map is constant) and run statistics.

    channels_total = B * C; channels_evaluated = masked rows forwarded; forward_batches = masked model calls.
    seconds_masks / seconds_forward / seconds_other split the wall time: building masked inputs, masked
    forward passes (with the weight computation), everything else (clean pass, combination, bookkeeping).
    """

    maps: torch.Tensor
    channels_total: int
    channels_evaluated: int
    forward_batches: int
    seconds_masks: float
    seconds_forward: float
    seconds_other: float

    @property
    def skip_fraction(self) -> float:
        return 1.0 - self.channels_evaluated / self.channels_total if self.channels_total else 0.0

    @property
    def masked_forwards(self) -> int:
        return self.channels_evaluated

    def stats(self) -> dict[str, float | int]:
        stats = asdict(self)
        del stats["maps"]
        stats["skip_fraction"] = self.skip_fraction
        stats["masked_forwards"] = self.masked_forwards
        return stats


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# Masked rows per forward pass when the caller does not say: the measured best for the resnets on CPU (they
# dominate real runs); a GPU wants more rows. The measurements: bench/README.md, "Batch size on CPU" under the Score-CAM variants.
AUTO_BATCH_SIZE = {"cpu": 32, "cuda": 256}


def auto_batch_size(images: torch.Tensor) -> int:
    """Rows per masked forward pass for images on their device."""
    return AUTO_BATCH_SIZE.get(images.device.type, AUTO_BATCH_SIZE["cpu"])


_COMPILED: "weakref.WeakKeyDictionary[nn.Module, Callable]" = weakref.WeakKeyDictionary()


class FixedBatchForward:
    """The model compiled once per process (torch.compile, static shapes) for the masked passes.

    Every call runs at exactly `batch_size` rows: a shorter last batch is padded with zeros and the padding's
    logits dropped, so one graph serves the whole run. If compilation fails, the eager model is used instead.
    """

    def __init__(self, model: nn.Module, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        if model not in _COMPILED:
            _COMPILED[model] = torch.compile(model, dynamic=False)
        self.compiled = _COMPILED[model]

    def __call__(self, masked: torch.Tensor) -> torch.Tensor:
        rows = masked.shape[0]
        if rows < self.batch_size:
            padding = masked.new_zeros((self.batch_size - rows, *masked.shape[1:]))
            masked = torch.cat([masked, padding]).contiguous(memory_format=_layout_of(masked))
        try:
            return self.compiled(masked)[:rows]
        except Exception as exc:  # noqa: BLE001 - any compiler failure: fall back to eager, same maps
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); Score-CAM runs eager", stacklevel=2)
            _COMPILED[self.model] = self.model
            self.compiled = self.model
            return self.model(masked)[:rows]


def _layout_of(tensor: torch.Tensor) -> torch.memory_format:
    if not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _check_options(mode: str, weight: str, batch_size: int, autocast: str | None, top_k: int | None) -> None:
    if mode not in SCORECAM_MODES:
        raise UsageError(f"Score-CAM mode {mode!r} is unknown; expected one of {', '.join(SCORECAM_MODES)}")
    if weight not in SCORECAM_WEIGHTS:
        raise UsageError(f"Score-CAM weight {weight!r} is unknown; expected one of {', '.join(SCORECAM_WEIGHTS)}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    if autocast is not None and autocast not in AUTOCAST_DTYPES:
        raise UsageError(f"autocast {autocast!r} is unknown; expected None or one of {', '.join(AUTOCAST_DTYPES)}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise UsageError(f"top_k must be a positive integer or None, got {top_k!r}")


def _class_scores(logits: torch.Tensor, targets: torch.Tensor, weight: str) -> torch.Tensor:
    """Post-softmax (or per-class sigmoid) probability of each row's target, in float32."""
    logits = logits.float()
    probs = logits.softmax(dim=1) if weight == "softmax" else logits.sigmoid()
    return probs.gather(1, targets[:, None])[:, 0]


def _selection_bounds(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    """Output indices where an extremum of a bilinear (align_corners=False) resize can lie.

    Between two source samples the resized signal is affine in the output index (or constant where the source
    coordinate is clamped), so along one axis the extrema are at the first/last output index of each source
    interval; neighbours are added as a margin against float disagreement about interval edges.
    """
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    src = (scale * (torch.arange(out_size, dtype=torch.float32) + 0.5) - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=in_size - 1)
    edge = torch.zeros(out_size, dtype=torch.bool)
    edge[0] = edge[-1] = True
    edge[1:] |= lo[1:] != lo[:-1]
    edge[:-1] |= lo[1:] != lo[:-1]
    near = edge.clone()
    near[1:] |= edge[:-1]
    near[:-1] |= edge[1:]
    return near.nonzero()[:, 0].to(device)


def _resize_matrix(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    """[out, in] matrix of the 1-D bilinear (align_corners=False) resize, taken from F.interpolate itself."""
    eye = torch.eye(in_size, dtype=torch.float32, device=device)[None]
    return F.interpolate(eye, size=out_size, mode="linear", align_corners=False)[0].T


def upsampled_min(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """min over H x W of the bilinear resize of each [.., h, w] map, without materialising the resize."""
    h, w = maps.shape[-2:]
    rows = _selection_bounds(h, size[0], maps.device)
    cols = _selection_bounds(w, size[1], maps.device)
    ry = _resize_matrix(h, size[0], maps.device)[rows]
    rx = _resize_matrix(w, size[1], maps.device)[cols]
    picked = torch.einsum("yi,...ij,xj->...yx", ry, maps.float(), rx)
    return picked.amin(dim=(-2, -1))


def _pick_channels(maps: torch.Tensor, mode: str, skip_zero_channels: bool, top_k: int | None) -> torch.Tensor:
    """[B, C] bool of the (image, channel) pairs to forward."""
    flat = maps.flatten(2)
    if skip_zero_channels:
        if mode == "parity":
            keep = (flat > 0).any(dim=2)  # ReLU(A_k) == 0 everywhere -> mask == 0 -> contributes nothing
        else:
            keep = flat.amax(dim=2) > flat.amin(dim=2)  # constant map -> (U - min) == 0 -> zero mask
    else:
        keep = torch.ones(maps.shape[:2], dtype=torch.bool, device=maps.device)
    if top_k is not None and top_k < maps.shape[1]:
        strength = flat.mean(dim=2).masked_fill(~keep, float("-inf"))
        chosen = strength.topk(top_k, dim=1).indices
        top = torch.zeros_like(keep).scatter_(1, chosen, True)
        keep &= top
    return keep


def score_cam(
    model: nn.Module,
    layer: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    mode: str = "minmax",
    batch_size: int | None = None,
    skip_zero_channels: bool = True,
    weight: str = "softmax",
    autocast: str | None = None,
    top_k: int | None = None,
    channels_last: bool = True,
    compile: bool = False,
    progress: Callable[[int], object] | None = None,
) -> ScoreCamResult:
    """Score-CAM maps of `images` [B, 3, H, W] for their `targets` [B], explained at `layer`'s output.

    mode="parity" is the authors' variant (spec section 3): M_k = U(ReLU A_k) / range (1 when the range is 0,
    no min shift), w_k = softmax(model(x * M_k))[target], L = ReLU(sum_k w_k M_k), min-max without epsilon.
    mode="minmax" is corrected Score-CAM: M_k = (U(A_k) - min) / (range + 1e-8), same weights and combination.
    weight="sigmoid" uses the per-class sigmoid (multi-label models) instead of the softmax.

    A combined map that is constant (e.g. every channel is zero) normalises to NaN; NaN is kept, and the
    robustness score counts such an image as RS = 0, as the authors' code did.

    Exact speed-ups: (a) sum_k w_k M_k is formed at feature resolution and upsampled once
    (parity: U(sum_k w_k/d_k ReLU A_k); minmax: U(sum_k w_k/(r_k+eps) (A_k - m_k)), the min shift m_k kept,
    ReLU applied after); (b) pairs whose mask is identically zero are not forwarded (skip_zero_channels):
    parity skips ReLU(A_k) == 0, minmax skips constant maps; (c) (image, channel) pairs of all B images
    are packed into masked batches of `batch_size` rows (None: auto_batch_size), each with its own target.
    Approximations only when asked: autocast="bf16" runs the masked passes in bfloat16; top_k keeps the k channels with the largest mean
    activation per image. `compile=True` runs the masked passes through torch.compile (one static-shape graph
    per model and process, built on the first call; maps change at round-off level; when it pays off:
    bench/README.md). Parity maps match score_cam_reference to ~1e-6; minmax maps carry float round-off
    of order ulp(|A_k|) / range_k (as the plain formula does), so maps with a large offset and a tiny range agree
    less closely. `progress(n)` is called with the number of masked rows finished at each step
    (tqdm's `update` fits). The model must be in eval mode; its mode is not changed, and its 4-D weights are
    put in channels_last only for the duration of the call when `channels_last` is set.
    """
    if batch_size is None:
        batch_size = auto_batch_size(images)
    _check_options(mode, weight, batch_size, autocast, top_k)
    check_model_and_layer(model, layer)
    targets = check_images_and_targets(images, targets)
    device = images.device
    size = (images.shape[-2], images.shape[-1])
    layout = torch.channels_last if channels_last else torch.contiguous_format
    start = time.perf_counter()

    with channels_last_model(model, channels_last), torch.inference_mode():
        batch = images.contiguous(memory_format=layout)
        activations = _clean_pass(model, layer, batch, targets, batch_size)
        maps = activations.relu() if mode == "parity" else activations
        pairs = _pick_channels(maps, mode, skip_zero_channels, top_k).nonzero()
        forward = FixedBatchForward(model, batch_size) if compile else model
        masked = _masked_passes(forward, batch, activations, targets, pairs, mode=mode, weight=weight,
                                batch_size=batch_size, autocast=autocast, progress=progress)
        saliency = _combine(maps, masked.coefficients, mode, size)
    saliency = saliency.clone()  # a normal tensor, usable outside inference mode
    _sync(device)
    total = time.perf_counter() - start
    return ScoreCamResult(
        maps=saliency,
        channels_total=images.shape[0] * activations.shape[1],
        channels_evaluated=int(pairs.shape[0]),
        forward_batches=masked.forward_batches,
        seconds_masks=masked.seconds_masks,
        seconds_forward=masked.seconds_forward,
        seconds_other=max(0.0, total - masked.seconds_masks - masked.seconds_forward),
    )


def _clean_pass(model: nn.Module, layer: nn.Module, batch: torch.Tensor, targets: torch.Tensor,
                batch_size: int) -> torch.Tensor:
    """Phase 1: the activations [B, C, h, w] (float32) of `layer` for the clean images (their logits only
    check the targets)."""
    with ActivationCapture(layer) as capture:
        chunks = []
        for first in range(0, batch.shape[0], batch_size):
            logits = check_logits(model(batch[first:first + batch_size]))
            check_target_range(targets, logits.shape[1])
            chunks.append(capture.take().float())
    return torch.cat(chunks).contiguous()


@dataclass
class _MaskedPasses:
    coefficients: torch.Tensor  # [B, C]: w_k / range_k of every (image, channel) pair, 0 where not forwarded
    forward_batches: int
    seconds_masks: float
    seconds_forward: float


def _masked_passes(forward: Callable[[torch.Tensor], torch.Tensor], batch: torch.Tensor, activations: torch.Tensor,
                   targets: torch.Tensor, pairs: torch.Tensor, *, mode: str, weight: str, batch_size: int,
                   autocast: str | None, progress: Callable[[int], object] | None) -> _MaskedPasses:
    """Phase 2: forward the masked images of the (image, channel) `pairs` [N, 2], packed `batch_size` rows a
    pass, each row scored for its own image's target; the channel's coefficient is its score over its mask's
    range (the range division moved from the mask onto the weight, so the combination can run on the maps)."""
    device = batch.device
    coefficients = torch.zeros(activations.shape[:2], dtype=torch.float32, device=device)
    amp = torch.autocast(device.type, dtype=AUTOCAST_DTYPES[autocast]) if autocast else contextlib.nullcontext()
    seconds_masks = seconds_forward = 0.0
    forward_batches = 0
    for first in range(0, pairs.shape[0], batch_size):
        rows = pairs[first:first + batch_size]
        _sync(device)
        tick = time.perf_counter()
        masked, ranges = scorecam_masks(batch, activations, mode, rows, MINMAX_EPS)
        _sync(device)
        tock = time.perf_counter()
        with amp:
            logits = forward(masked)
        scores = _class_scores(logits, targets[rows[:, 0]], weight)
        if mode == "parity":
            coefficient = scores / torch.where(ranges > 0, ranges, torch.ones_like(ranges))
        else:  # the operator gives a zero mask where the range is 0
            coefficient = torch.where(ranges > 0, scores / (ranges + MINMAX_EPS), torch.zeros_like(scores))
        coefficients[rows[:, 0], rows[:, 1]] = coefficient
        _sync(device)
        seconds_masks += tock - tick
        seconds_forward += time.perf_counter() - tock
        forward_batches += 1
        if progress is not None:
            progress(rows.shape[0])
    return _MaskedPasses(coefficients, forward_batches, seconds_masks, seconds_forward)


def _combine(maps: torch.Tensor, coefficients: torch.Tensor, mode: str, size: tuple[int, int]) -> torch.Tensor:
    """Phase 3: sum_k c_k M_k at feature resolution, upsampled once, ReLU, min-max without epsilon.

    Bilinear resizing is linear, so U(sum_k c_k A_k) = sum_k c_k U(A_k); minmax masks keep their min shift,
    taken as the minimum of the upsampled map (`upsampled_min`)."""
    if mode == "minmax":
        maps = maps - upsampled_min(maps, size)[..., None, None]
    combined = torch.einsum("bc,bchw->bhw", coefficients, maps)
    return minmax_normalize(upsample(combined, size).relu())


def score_cam_reference(
    model: nn.Module, layer: nn.Module, image: torch.Tensor, target: int, n_batch: int = 32
) -> torch.Tensor:
    """The authors' Score-CAM loop written plainly (spec section 3): the parity oracle and benchmark anchor.

    One image [1, 3, H, W]: ReLU the hooked activations, upsample all C maps to H x W (bilinear,
    align_corners=False), divide each by its range (1 when the range is 0; no min shift), forward the masked
    images in chunks of `n_batch`, weight each map by the softmax probability of `target`, L = ReLU(sum_k w_k M_k),
    min-max without epsilon (NaN for a constant map). Returns [H, W] float32. Unlike the original, a last chunk
    smaller than n_batch is allowed (the original's reshape required C divisible by 32).
    """
    check_model_and_layer(model, layer)
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[0] != 1:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise UsageError(f"image must be one image [1, C, H, W], got {shape}")
    size = (image.shape[-2], image.shape[-1])
    with torch.no_grad():
        with ActivationCapture(layer) as capture:
            logits = check_logits(model(image))
            activations = capture.take()
        check_target_range(torch.tensor([target]), logits.shape[1])
        activations = activations.float().relu()
        upsampled = F.interpolate(activations, size=size, mode="bilinear", align_corners=False)[0]  # [C, H, W]
        ranges = upsampled.amax(dim=(1, 2)) - upsampled.amin(dim=(1, 2))
        masks = upsampled / torch.where(ranges == 0, torch.ones_like(ranges), ranges)[:, None, None]
        weights = []
        for first in range(0, masks.shape[0], n_batch):
            chunk = masks[first:first + n_batch]
            probs = model(image * chunk[:, None]).float().softmax(dim=1)
            weights.append(probs[:, target])
        weights = torch.cat(weights)
        combined = (weights[:, None, None] * masks).sum(dim=0).relu()
        return (combined - combined.min()) / (combined.max() - combined.min())
