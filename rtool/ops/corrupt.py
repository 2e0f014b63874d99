"""Corruption kernels (`rtool noc`): the Python face of torch.ops.rtool.corrupt_*.

Every op takes images [B, C, H, W] (float32 or float64, any layout; read as contiguous) and per-image
parameter tensors on the same device, and returns a new contiguous tensor of the same shape and dtype:
the input is never modified. The per-image parameters are drawn by `rtool.noc.draw_params`; these ops only
apply them.

None of these ops is differentiable (they implement data corruptions: stamps, noise, 8-bit colour maths,
nearest-neighbour warps); calling them on a tensor that requires grad raises an error saying so.
"""
from __future__ import annotations

import torch

from rtool.ops._library import operators_loaded, require_operators

STAMP_KINDS = {"none": 0, "rect": 1, "rhombus": 2, "disc": 3, "disc_blend": 4}
STAMP_FIELDS = 7  # kind, r0, c0, h, w, stride_r, stride_c
NOISE_MODES = ("gaussian", "salt_pepper")
RESAMPLE_MODES = ("pixelate", "thumbnail", "crop_stretch")


def _no_grad(name: str, *tensors: torch.Tensor) -> None:
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        raise RuntimeError(f"rtool.{name} is not differentiable (a data corruption); "
                           "call it on detached tensors or under torch.no_grad()")


def corrupt_stamp(images: torch.Tensor, stamps: torch.Tensor, fills: torch.Tensor) -> torch.Tensor:
    """Draw per-image stamps, in order, into a copy of `images`.

    stamps [B, S, 7] int64, one row per stamp: (kind, r0, c0, h, w, stride_r, stride_c), kinds from
    STAMP_KINDS: ``rect`` covers rows r0 + i*stride_r (i < h) and columns c0 + j*stride_c (j < w); ``rhombus``
    the 98 px diamond centred at (r0, c0) (row offsets -6..6, columns -(7-|i|)..6-|i|); ``disc`` the 121 px
    disc at (r0, c0) (half-widths 6,6,5,5,4,3,1); ``disc_blend`` the same disc with v <- 0.5 v + 0.5 fill;
    ``none`` pads. fills [B, S]: the value written to every channel. Pixels outside the image are skipped.
    """
    require_operators("corrupt_stamp")
    _no_grad("corrupt_stamp", images)
    return torch.ops.rtool.corrupt_stamp(images, stamps, fills)


def corrupt_noise(images: torch.Tensor, keys: torch.Tensor, amounts: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-image counter-based noise: element e of image b draws from a hash of (keys[b], e) only.

    ``gaussian``: clip(x + amounts[b] * |n|, 0, 1), n ~ N(0, 1) by Box-Muller (half-normal: never darkens).
    ``salt_pepper``: with probability amounts[b] an element becomes 0, with the same probability 1, each
    channel on its own. keys [B] int64, amounts [B] float. Bit-identical across batch sizes and thread
    counts; across devices up to the last bit of log/cos (gaussian).
    """
    require_operators("corrupt_noise")
    _no_grad("corrupt_noise", images)
    return torch.ops.rtool.corrupt_noise(images, keys, amounts, mode)


def corrupt_box_blur(images: torch.Tensor, weights: torch.Tensor, passes: int = 5) -> torch.Tensor:
    """clip((1 - w) x + w b), b = `passes` rounds of a 3x3 box filter (1/9) with zero padding each round.

    weights [B] float. The padding is reapplied every round, so borders darken (spec noc.md §1.3 blur).
    """
    require_operators("corrupt_box_blur")
    _no_grad("corrupt_box_blur", images)
    return torch.ops.rtool.corrupt_box_blur(images, weights, passes)


def corrupt_hue(images: torch.Tensor, shifts: torch.Tensor, pil_exact: bool) -> torch.Tensor:
    """Rotate each RGB image's hue by shifts[b] turns (images [B, 3, H, W]).

    ``pil_exact``: PIL's path: 8-bit values floor(255 x), PIL's 8-bit HSV, H += trunc(255 shift) mod 256,
    back to RGB, output k/255. Otherwise torchvision's float HSV with h <- (h + shift) mod 1.
    """
    require_operators("corrupt_hue")
    _no_grad("corrupt_hue", images)
    return torch.ops.rtool.corrupt_hue(images, shifts, pil_exact)


def corrupt_affine(images: torch.Tensor, matrices: torch.Tensor, quantize: bool) -> torch.Tensor:
    """Nearest-neighbour affine warp per image with black fill, as PIL's Image.transform(AFFINE, NEAREST).

    matrices [B, 6] float64: PIL's inverse coefficients (a, b, c, d, e, f): output pixel (x, y) reads
    source (floor(a (x+.5) + b (y+.5) + c), floor(d (x+.5) + e (y+.5) + f)), black when outside.
    ``quantize`` reads the source as 8-bit (floor(255 x) / 255) as the PIL path does.
    """
    require_operators("corrupt_affine")
    _no_grad("corrupt_affine", images)
    return torch.ops.rtool.corrupt_affine(images, matrices, quantize)


def corrupt_resample(images: torch.Tensor, params: torch.Tensor, mode: str, quantize: bool = False) -> torch.Tensor:
    """Per-image resampling, output H x W.

    ``pixelate`` params [B, 1] int64 block k: k x k block means of the top-left (H//k)k x (W//k)k part,
    repeated k x k, reflect-padded back to H x W (the odd pixel goes after). ``thumbnail`` params [B, 2]
    (h, w): PIL BILINEAR resize to h x w (antialiased) and back to H x W. ``crop_stretch`` params [B, 2]
    (axis, cut): drop the first `cut` rows (axis 0) or columns (axis 1), PIL BILINEAR back to H x W.
    ``quantize`` (thumbnail, crop_stretch): PIL's 8-bit path, fixed-point passes on floor(255 x), output
    k/255; otherwise the same filter in floating point.
    """
    require_operators("corrupt_resample")
    _no_grad("corrupt_resample", images)
    return torch.ops.rtool.corrupt_resample(images, params, mode, quantize)


if operators_loaded():

    def _fake_like(images: torch.Tensor, name: str) -> torch.Tensor:
        torch._check(images.dim() == 4, lambda: f"rtool.{name}: images must be 4-D, got {images.dim()}-D")
        return torch.empty_like(images, memory_format=torch.contiguous_format)

    @torch.library.register_fake("rtool::corrupt_stamp")
    def _stamp_fake(images, stamps, fills):
        return _fake_like(images, "corrupt_stamp")

    @torch.library.register_fake("rtool::corrupt_noise")
    def _noise_fake(images, keys, amounts, mode):
        return _fake_like(images, "corrupt_noise")

    @torch.library.register_fake("rtool::corrupt_box_blur")
    def _box_blur_fake(images, weights, passes=5):
        return _fake_like(images, "corrupt_box_blur")

    @torch.library.register_fake("rtool::corrupt_hue")
    def _hue_fake(images, shifts, pil_exact):
        return _fake_like(images, "corrupt_hue")

    @torch.library.register_fake("rtool::corrupt_affine")
    def _affine_fake(images, matrices, quantize):
        return _fake_like(images, "corrupt_affine")

    @torch.library.register_fake("rtool::corrupt_resample")
    def _resample_fake(images, params, mode, quantize):
        return _fake_like(images, "corrupt_resample")
