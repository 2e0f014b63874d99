"""The 23 corruptions of spec noc.md §1.3 applied to batches with given per-image parameters.

`apply_params(images, params, mode)` applies drawn parameters (see rtool.noc.params); `corrupt(...)`
draws and applies. Images are float [B, 3, H, W] in [0, 1] on any device; the result is a new tensor.

Modes: ``pil_exact`` reproduces the 8-bit quantisation of the corruptions the reference runs through PIL
(rotation, translation, shear, thumbnail_resize, gray_scale, hue, elastic, backlight): the input is read
as floor(255 x), PIL's integer arithmetic is followed, and the output is k/255. ``fast`` runs the same
operations in floating point. The other 15 corruptions are tensor operations and identical in both modes.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from rtool.errors import UsageError
from rtool.noc.params import CORRUPTIONS, CorruptionParams, check_name, check_size, draw_params
from rtool.ops.corrupt import (
    STAMP_KINDS,
    corrupt_affine,
    corrupt_box_blur,
    corrupt_hue,
    corrupt_noise,
    corrupt_resample,
    corrupt_stamp,
)

MODES = ("pil_exact", "fast")
PIL_PATH = frozenset({"rotation", "translation", "shear", "thumbnail_resize", "gray_scale", "hue", "elastic",
                      "backlight"})
BLUR_PASSES = 5


def quantize8(x: torch.Tensor) -> torch.Tensor:
    """x as the PIL path sees it: floor(255 x) / 255 (ToPILImage truncates)."""
    return (x * 255).to(torch.uint8).to(x.dtype) / 255


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-image [B] parameter shaped [B, 1, 1, 1] in x's dtype and device."""
    return v.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


# ---- tensor-op corruptions --------------------------------------------------------------------------------

def _quantization(x, p, pil):
    n = _col(p["levels"], x)
    return torch.mul(x, n).round_().div_(n).clamp_(0, 1)


def _brightness(x, p, pil):
    return torch.add(x, _col(p["shift"], x)).clamp_(0, 1)


def _contrast(x, p, pil):
    # (1 - a) x + a m, as one lerp pass
    return torch.lerp(x, x.mean(dim=(1, 2, 3), keepdim=True), _col(p["weight"], x))


def _color_disortion(x, p, pil):
    out = x.clone()
    rows = torch.arange(x.shape[0], device=x.device)
    channel = p["channel"].to(x.device)
    shift = p["shift"].to(device=x.device, dtype=x.dtype).view(-1, 1, 1)
    out[rows, channel] = (x[rows, channel] + shift).clamp_(0, 1)
    return out


def _floor255(x: torch.Tensor) -> torch.Tensor:
    return torch.mul(x, 255).floor_()  # the 8-bit value ToPILImage stores, as a float


def _gray_scale(x, p, pil):
    if pil:
        # PIL's "L": (19595 R + 38470 G + 7471 B + 0x8000) >> 16 on 8-bit values. The sum stays below 2^24,
        # so float32 holds it exactly and the shift is an exact multiply by 2^-16 and a floor.
        r, g, b = _floor255(x[:, 0]), _floor255(x[:, 1]), _floor255(x[:, 2])
        total = r.mul_(19595).add_(g, alpha=38470).add_(b, alpha=7471).add_(0x8000)
        gray = total.mul_(1.0 / 65536).floor_().div_(255)
    else:
        gray = x[:, 0] * 0.299 + x[:, 1] * 0.587 + x[:, 2] * 0.114
    w = _col(p["weight"], x)
    return torch.mul(x, 1 - w).add_(gray[:, None] * w).clamp_(0, 1)


def _backlight(x, p, pil):
    out = _floor255(x).div_(255) if pil else x.clone()
    B, _, H, W = x.shape
    axis = p["axis"].to(x.device).view(-1, 1, 1)
    split = p["split"].to(x.device).view(-1, 1, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W)
    rows = torch.arange(H, device=x.device).view(1, H, 1)
    # x axis: columns >= split brighten; y axis: rows < split brighten.
    bright = torch.where(axis == 0, cols >= split, rows < split)
    shift = (bright.to(x.dtype) * 2 - 1) * p["shift"].to(device=x.device, dtype=x.dtype).view(-1, 1, 1)
    return out.add_(shift[:, None]).clamp_(0, 1)


# ---- kernel-backed corruptions ------------------------------------------------------------------------------

def _gaussian(x, p, pil):
    return corrupt_noise(x, p["key"].to(x.device), p["amount"].to(x.device), "gaussian")


def _salt_pepper(x, p, pil):
    return corrupt_noise(x, p["key"].to(x.device), p["amount"].to(x.device), "salt_pepper")


def _blur(x, p, pil):
    return corrupt_box_blur(x, p["weight"].to(x.device), BLUR_PASSES)


def _hue(x, p, pil):
    return corrupt_hue(x, p["shift"].to(x.device), pil)


def _stamp_rows(kind: int, r0, c0, h, w, sr, sc, valid) -> torch.Tensor:
    """[B, L, 7] stamp rows from per-line tensors (ints or [B, L] tensors); invalid rows get kind 0."""
    ref = valid
    parts = [torch.as_tensor(v).expand_as(ref) if not isinstance(v, torch.Tensor) else v.expand_as(ref)
             for v in (kind, r0, c0, h, w, sr, sc)]
    rows = torch.stack(parts, dim=-1).clone()
    rows[..., 0] = torch.where(valid, rows[..., 0], torch.zeros_like(rows[..., 0]))
    return rows


def _lines_stamps(p: CorruptionParams, H: int, W: int, vertical: bool) -> tuple[torch.Tensor, torch.Tensor]:
    line, centre, dots = p["line"], p["centre"], p["dots"]
    count = p["count"]
    L = line.shape[1]
    live = torch.arange(L)[None, :] < count[:, None]
    cols = H if vertical else W  # the length of the axis the dashes run along
    rect = STAMP_KINDS["rect"]
    right = live & (dots >= 1) & (centre + 2 < cols - 12)
    left = live & (dots >= 1) & (centre - 2 > 7)
    # Horizontal: a 3 x 5 dash on rows line-1..line+1, columns centre-2..centre+2, plus dotted copies at
    # columns centre+6..centre+14 and centre-10..centre-2 (step 2). Vertical: the same, transposed.
    pieces = []
    for valid, start, step in ((live, centre - 2, 1), (right, centre + 6, 2), (left, centre - 10, 2)):
        if vertical:
            pieces.append(_stamp_rows(rect, start, line - 1, 5, 3, step, 1, valid))
        else:
            pieces.append(_stamp_rows(rect, line - 1, start, 3, 5, 1, step, valid))
    stamps = torch.cat(pieces, dim=1)
    fills = p["gray"][:, None].expand(-1, stamps.shape[1])
    return stamps, fills


def _shape_stamps(p: CorruptionParams, kind: str, fill: torch.Tensor | None):
    row, col, count = p["row"], p["col"], p["count"]
    live = torch.arange(row.shape[1])[None, :] < count[:, None]
    stamps = _stamp_rows(STAMP_KINDS[kind], row, col, 0, 0, 0, 0, live)
    fills = p["gray"] if fill is None else fill.expand(row.shape)
    return stamps, fills


def _stamps_for(name: str, p: CorruptionParams, H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    rect = STAMP_KINDS["rect"]
    if name in ("artifacts", "vertical_artifacts"):
        return _lines_stamps(p, H, W, vertical=name == "vertical_artifacts")
    if name == "rhombus":
        return _shape_stamps(p, "rhombus", None)
    if name == "circle":
        return _shape_stamps(p, "disc", None)
    if name == "rain":
        return _shape_stamps(p, "disc_blend", torch.ones(()))
    if name == "obstruction":
        s = p["side"]
        one = torch.ones_like(s, dtype=torch.bool)
        stamps = _stamp_rows(rect, p["top"], p["left"], s, s, 1, 1, one)[:, None]
        return stamps, p["gray"][:, None]
    if name == "border":
        t = p["thickness"]
        one = torch.ones_like(t, dtype=torch.bool)
        stamps = torch.stack([
            _stamp_rows(rect, 0, 0, t, W, 1, 1, one),
            _stamp_rows(rect, H - t, 0, t, W, 1, 1, one),
            _stamp_rows(rect, 0, 0, H, t, 1, 1, one),
            _stamp_rows(rect, 0, W - t, H, t, 1, 1, one),
        ], dim=1)
        return stamps, p["gray"][:, None].expand(-1, 4)
    raise KeyError(name)


def stamp_arguments(params: CorruptionParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The (stamps [B, S, 7], fills [B, S]) that rtool.ops.corrupt_stamp draws for a stamp corruption."""
    H, W = params.size
    stamps, fills = _stamps_for(params.name, params.to("cpu"), H, W)
    return stamps.to(torch.int64).contiguous(), fills.to(torch.float64).contiguous()


def _stamp(name: str) -> Callable:
    def apply(x, p, pil):
        stamps, fills = stamp_arguments(p)
        if stamps.shape[1] == 0:
            return x.clone()
        return corrupt_stamp(x, stamps.to(x.device), fills.to(x.device))
    return apply


def affine_matrix(angle: float, translate: tuple[float, float], shear: tuple[float, float],
                  center: tuple[float, float]) -> list[float]:
    """PIL's inverse affine coefficients for a rotation by `angle` degrees (counter-clockwise), a translation
    in pixels and a shear in degrees about `center` (torchvision's convention for F.affine, scale 1)."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]  # the inverse of [[a, b], [c, d]] (its determinant is 1)
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
    m[2] += cx
    m[5] += cy
    return m


def affine_matrices(params: CorruptionParams) -> torch.Tensor:
    """[B, 6] float64 PIL inverse coefficients of a rotation, translation or shear batch."""
    H, W = params.size
    center = (W * 0.5, H * 0.5)
    rows = []
    for i in range(len(params)):
        if params.name == "rotation":
            rows.append(affine_matrix(float(params["degrees"][i]), (0.0, 0.0), (0.0, 0.0), center))
        elif params.name == "translation":
            rows.append(affine_matrix(0.0, (float(params["tx"][i]), float(params["ty"][i])), (0.0, 0.0), center))
        else:
            rows.append(affine_matrix(0.0, (0.0, 0.0), (float(params["degrees"][i]), 0.0), center))
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 6)


def _affine(x, p, pil):
    return corrupt_affine(x, affine_matrices(p).to(x.device), pil)


def _pixelate(x, p, pil):
    return corrupt_resample(x, p["block"].to(x.device).view(-1, 1), "pixelate", False)


def _thumbnail(x, p, pil):
    sizes = torch.stack([p["height"], p["width"]], dim=1).to(x.device)
    return corrupt_resample(x, sizes, "thumbnail", pil)


def _elastic(x, p, pil):
    params = torch.stack([p["axis"], p["cut"]], dim=1).to(x.device)
    return corrupt_resample(x, params, "crop_stretch", pil)


APPLY: dict[str, Callable[[torch.Tensor, CorruptionParams, bool], torch.Tensor]] = {
    "quantization": _quantization,
    "gaussian": _gaussian,
    "salt_pepper": _salt_pepper,
    "blur": _blur,
    "thumbnail_resize": _thumbnail,
    "pixelate": _pixelate,
    "artifacts": _stamp("artifacts"),
    "vertical_artifacts": _stamp("vertical_artifacts"),
    "rhombus": _stamp("rhombus"),
    "rain": _stamp("rain"),
    "circle": _stamp("circle"),
    "obstruction": _stamp("obstruction"),
    "border": _stamp("border"),
    "translation": _affine,
    "shear": _affine,
    "elastic": _elastic,
    "rotation": _affine,
    "backlight": _backlight,
    "brightness": _brightness,
    "contrast": _contrast,
    "color_disortion": _color_disortion,
    "gray_scale": _gray_scale,
    "hue": _hue,
}
assert tuple(APPLY) == CORRUPTIONS


def check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise UsageError(f"images of shape {shape}: expected a float tensor [B, 3, H, W]")
    if not images.is_floating_point():
        raise UsageError(f"images of dtype {images.dtype}: expected float values in [0, 1]")
    check_size(images.shape[2], images.shape[3])


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
    return mode


def apply_params(images: torch.Tensor, params: CorruptionParams, mode: str = "pil_exact") -> torch.Tensor:
    """Apply drawn (or replayed) parameters to images [B, 3, H, W]; returns a new tensor of the same shape.

    float16/bfloat16 images are corrupted in float32 and cast back. Not differentiable.
    """
    check_images(images)
    check_mode(mode)
    if len(params) != images.shape[0]:
        raise UsageError(f"parameters for {len(params)} images given for a batch of {images.shape[0]}")
    if tuple(params.size) != tuple(images.shape[-2:]):
        raise UsageError(f"parameters drawn for {params.size[0]}x{params.size[1]} images given for "
                         f"{images.shape[2]}x{images.shape[3]} ones")
    if images.shape[0] == 0:
        return images.clone()
    work = images if images.dtype in (torch.float32, torch.float64) else images.float()
    with torch.no_grad():
        out = APPLY[params.name](work.detach(), params, mode == "pil_exact")
    return out.to(images.dtype)


def corrupt(images: torch.Tensor, name: str, seed: int = 0, indices: Sequence[int] | torch.Tensor | None = None,
            mode: str = "pil_exact", severity: float | None = None) -> torch.Tensor:
    """Corrupt images [B, 3, H, W] with `name`; image b uses the parameters of dataset index indices[b]
    (default 0..B-1), so the same (seed, index) gives the same corrupted image in any batch or device."""
    check_name(name)
    check_images(images)
    idx = range(images.shape[0]) if indices is None else indices
    params = draw_params(name, tuple(images.shape[-2:]), idx, seed=seed, severity=severity)
    return apply_params(images, params, mode)
