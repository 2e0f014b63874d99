"""Drawing primitives of the `shapes` dataset: unit shape outlines, anti-aliased rasterisation, backgrounds.

Everything works on one 64x64-ish image at a time with numpy and PIL's C rasteriser; the generator in
`shapes.py` draws all random parameters and loops over images.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

SHAPE_NAMES = ["circle", "square", "triangle", "star", "cross", "ring", "crescent", "diamond", "arrow", "heart"]
SUPERSAMPLE = 4
STRIPE_PERIOD = 6.0
BACKGROUND_KINDS = ("flat", "gradient", "blobs", "noise")

# A shape is a list of (polygon [k, 2], fill) drawn in order; fill 0 cuts a hole. Polygon 0 is the outline
# that sets the object's size. Unit shapes fit in the unit circle, y pointing down.


def _regular(n: int, radius: float = 1.0, phase: float = -np.pi / 2, centre=(0.0, 0.0)) -> np.ndarray:
    t = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)], axis=1)


def _star() -> np.ndarray:
    points = _regular(10)
    points[1::2] *= 0.45
    return points


def _cross(half_width: float = 0.3) -> np.ndarray:
    w = half_width
    return np.array([(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w),
                     (-1, w), (-1, -w), (-w, -w)], dtype=float)


def _arrow() -> np.ndarray:
    return np.array([(-1, -0.22), (0.2, -0.22), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.22), (-1, 0.22)], dtype=float)


def _heart(n: int = 64) -> np.ndarray:
    t = 2 * np.pi * np.arange(n) / n
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y + 2.5], axis=1) / 17.0


UNIT_SHAPES: dict[str, list[tuple[np.ndarray, int]]] = {
    "circle": [(_regular(48), 1)],
    "square": [(_regular(4, phase=np.pi / 4), 1)],
    "triangle": [(_regular(3), 1)],
    "star": [(_star(), 1)],
    "cross": [(_cross(), 1)],
    "ring": [(_regular(48), 1), (_regular(48, radius=0.55), 0)],
    "crescent": [(_regular(48), 1), (_regular(48, radius=0.85, centre=(0.45, 0.0)), 0)],
    "diamond": [(np.array([(0, -1), (0.55, 0), (0, 1), (-0.55, 0)], dtype=float), 1)],
    "arrow": [(_arrow(), 1)],
    "heart": [(_heart(), 1)],
}


def place_shape(name: str, size: int, angle: float, side_fraction: float, u: float, v: float
                ) -> list[tuple[np.ndarray, int]]:
    """Rotate, scale and place a unit shape: its outline's box side is `side_fraction` of the image and its
    position inside the image is chosen by u, v in [0, 1] (the whole outline stays 1 px inside the border)."""
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    parts = [(poly @ rotation.T, fill) for poly, fill in UNIT_SHAPES[name]]
    outline = parts[0][0]
    low, high = outline.min(axis=0), outline.max(axis=0)
    scale = side_fraction * size / float((high - low).max())
    low, high = low * scale, high * scale
    margin = 1.0
    origin = np.array([
        margin - low[0] + u * max(size - 2 * margin - (high[0] - low[0]), 0.0),
        margin - low[1] + v * max(size - 2 * margin - (high[1] - low[1]), 0.0),
    ])
    return [(poly * scale + origin, fill) for poly, fill in parts]


def rasterise(parts: list[tuple[np.ndarray, int]], size: int) -> np.ndarray:
    """Coverage of the shape per pixel, uint8 0..255, by drawing at 4x and box-averaging down."""
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(big)
    for poly, fill in parts:
        # PIL puts integer coordinates at pixel centres: shift by half a supersampled pixel.
        points = [(float(x), float(y)) for x, y in poly * SUPERSAMPLE - 0.5]
        draw.polygon(points, fill=255 * fill)
    return np.asarray(big.reduce(SUPERSAMPLE))


def tight_box(coverage: np.ndarray) -> tuple[int, int, int, int]:
    """Half-open (xmin, ymin, xmax, ymax) of the pixels the shape touches at all."""
    rows = np.flatnonzero(coverage.any(axis=1))
    cols = np.flatnonzero(coverage.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (read-only, shared)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of the shared background pool, float32 [size, size, 3] in 0..255, random colours."""
    colour = lambda: rng.uniform(0, 255, 3).astype(np.float32)  # noqa: E731
    if kind == "flat":
        return np.broadcast_to(colour(), (size, size, 3)).copy()
    xs, ys = _grid(size)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = xs * np.cos(angle) + ys * np.sin(angle)
        t = (t - t.min()) / (t.max() - t.min())
        start, end = colour(), colour()
        return start + t[..., None] * (end - start)
    if kind == "blobs":
        image = np.broadcast_to(colour(), (size, size, 3)).copy()
        for _ in range(int(rng.integers(3, 6))):
            cx, cy = rng.uniform(0, size, 2).astype(np.float32)
            inv = np.float32(-0.5 / (rng.uniform(0.12, 0.3) * size) ** 2)
            # Separable Gaussian: exp of a sum = outer product of two 1-D exps.
            weight = np.outer(np.exp(inv * (ys[:, 0] - cy) ** 2), np.exp(inv * (xs[0] - cx) ** 2))[..., None]
            image += weight * (colour() - image)
        return image
    if kind == "noise":
        amplitude = np.float32(rng.uniform(15, 50))
        noise = rng.standard_normal((size, size, 3), dtype=np.float32)
        return np.clip(colour() + amplitude * noise, 0, 255)
    raise ValueError(f"unknown background kind {kind!r}")


def stripes(size: int, angle_deg: float, phase: float, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Sharp two-colour stripes of period 6 px; `angle_deg` is the direction across the stripes
    (0 = vertical stripes, the colour changes along x)."""
    xs, ys = _grid(size)
    a = np.deg2rad(angle_deg)
    band = np.mod(xs * np.cos(a) + ys * np.sin(a) + phase, STRIPE_PERIOD) < STRIPE_PERIOD / 2
    return np.where(band[..., None], first, second).astype(np.float32)
