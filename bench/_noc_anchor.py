"""The authors'-style per-image path for the bench anchor (spec noc.md §1.3, §6): one image at a time,
PIL round trips for the PIL-path corruptions, Python lists of pixel coordinates for the stamps. Written
here from the spec (not the authors' code) to time what users of the reference pay per image."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms import functional as TF1

_DISC = (6, 6, 5, 5, 4, 3, 1)


def _to_pil(x):
    return TF1.to_pil_image(x)


def _from_pil(img):
    return TF1.to_tensor(img)


def _fill(x, points, value):
    ys = torch.tensor([p[0] for p in points])
    xs = torch.tensor([p[1] for p in points])
    x[:, ys, xs] = value
    return x


def anchor(name: str, x: torch.Tensor, rec: dict) -> torch.Tensor:
    """One image [3, H, W] under `name` with the parameters `rec` (CorruptionParams.as_records())."""
    h, w = x.shape[-2:]
    if name == "quantization":
        return (torch.round(x * rec["levels"]) / rec["levels"]).clamp(0, 1)
    if name == "gaussian":
        return (x + torch.randn_like(x).abs() * rec["amount"]).clamp(0, 1)
    if name == "salt_pepper":
        u = torch.rand_like(x)
        noise = torch.where(u < rec["amount"], -2.0, torch.where(u > 1 - rec["amount"], 2.0, 0.0))
        return (x + noise).clamp(0, 1)
    if name == "blur":
        k = torch.full((3, 1, 3, 3), 1 / 9)
        b = x[None]
        for _ in range(5):
            b = F.conv2d(b, k, padding=1, groups=3)
        return ((1 - rec["weight"]) * x + rec["weight"] * b[0]).clamp(0, 1)
    if name == "contrast":
        return (1 - rec["weight"]) * x + rec["weight"] * x.mean()
    if name == "brightness":
        return (x + rec["shift"]).clamp(0, 1)
    if name in ("artifacts", "vertical_artifacts"):
        vertical = name == "vertical_artifacts"
        cols = h if vertical else w
        points = []
        for y, c, k in zip(rec["line"], rec["centre"], rec["dots"]):
            xs = list(range(c - 2, c + 3))
            if k >= 1:
                if c + 2 < cols - 12:
                    xs += list(range(c + 6, c + 15, 2))
                if c - 2 > 7:
                    xs += list(range(c - 10, c - 1, 2))
            for xx in xs:
                for yy in (y - 1, y, y + 1):
                    points.append((xx, yy) if vertical else (yy, xx))
        return _fill(x.clone(), points, rec["gray"])
    if name == "color_disortion":
        out = x.clone()
        out[rec["channel"]] = (out[rec["channel"]] + rec["shift"]).clamp(0, 1)
        return out
    if name == "obstruction":
        s, t, l = rec["side"], rec["top"], rec["left"]
        points = [(t + i, l + j) for i in range(s) for j in range(s)]
        return _fill(x.clone(), points, rec["gray"])
    if name == "border":
        t = rec["thickness"]
        points = [(i, j) for i in range(h) for j in range(w) if i < t or i >= h - t or j < t or j >= w - t]
        return _fill(x.clone(), points, rec["gray"])
    if name in ("rhombus", "circle", "rain"):
        out = x.clone()
        for n, (r, c) in enumerate(zip(rec["row"], rec["col"])):
            if name == "rhombus":
                points = [(r + i, c + k) for i in range(-6, 7) for k in range(-(7 - abs(i)), 7 - abs(i))]
            else:
                points = [(r + i, c + k) for i in range(-6, 7) for k in range(-_DISC[abs(i)], _DISC[abs(i)] + 1)]
            if name == "rain":
                ys = torch.tensor([p[0] for p in points])
                xs = torch.tensor([p[1] for p in points])
                out[:, ys, xs] = 0.5 + 0.5 * out[:, ys, xs]
            else:
                _fill(out, points, rec["gray"][n])
        return out
    if name in ("rotation", "translation", "shear"):
        kwargs = dict(angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, 0.0],
                      interpolation=TF1.InterpolationMode.NEAREST)
        if name == "rotation":
            kwargs["angle"] = float(rec["degrees"])
        elif name == "translation":
            kwargs["translate"] = [rec["tx"], rec["ty"]]
        else:
            kwargs["shear"] = [float(rec["degrees"]), 0.0]
        return _from_pil(TF1.affine(_to_pil(x), **kwargs))
    if name == "pixelate":
        k = rec["block"]
        big = F.interpolate(F.avg_pool2d(x[None], k, k), scale_factor=k, mode="nearest")
        dh, dw = h - big.shape[-2], w - big.shape[-1]
        if dh or dw:
            big = F.pad(big, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="reflect")
        return big[0]
    if name == "thumbnail_resize":
        img = _to_pil(x).resize((rec["width"], rec["height"]), Image.BILINEAR).resize((w, h), Image.BILINEAR)
        return _from_pil(img)
    if name == "gray_scale":
        gray = _from_pil(_to_pil(x).convert("L"))
        return (rec["weight"] * gray + (1 - rec["weight"]) * x).clamp(0, 1)
    if name == "hue":
        hh, s, v = _to_pil(x).convert("HSV").split()
        shifted = Image.fromarray(((np.asarray(hh, dtype=np.int32) + int(rec["shift"] * 255)) % 256).astype(np.uint8), "L")
        return _from_pil(Image.merge("HSV", (shifted, s, v)).convert("RGB"))
    if name == "elastic":
        s = rec["cut"]
        box = (0, s, w, h) if rec["axis"] == 0 else (s, 0, w, h)
        return _from_pil(_to_pil(x).crop(box).resize((w, h), Image.BILINEAR))
    if name == "backlight":
        img = _to_pil(x)
        b, d = rec["split"], rec["shift"]
        if rec["axis"] == 0:
            left, right = _from_pil(img.crop((0, 0, b, h))), _from_pil(img.crop((b, 0, w, h)))
            return torch.cat([(left - d).clamp(0, 1), (right + d).clamp(0, 1)], dim=2)
        top, bottom = _from_pil(img.crop((0, 0, w, b))), _from_pil(img.crop((0, b, w, h)))
        return torch.cat([(top + d).clamp(0, 1), (bottom - d).clamp(0, 1)], dim=1)
    raise KeyError(name)
