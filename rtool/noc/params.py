"""Per-image random parameters of the 23 corruptions (spec noc.md §1.2-1.3, ranges of settings.py @7a25541).

Every image gets its own NumPy generator seeded from (seed, corruption, image index), so the parameters of
image i do not depend on the batch it sits in, on the device, or on how many workers or ranks share the
data. Drawing happens on the CPU; `CorruptionParams.to(device)` moves the result.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rtool.engine.hashing import stable_hash
from rtool.errors import UsageError

# The order of the paper's training / accuracy matrix (spec §1.3, `none` excluded).
CORRUPTIONS: tuple[str, ...] = (
    "quantization", "gaussian", "salt_pepper", "blur", "thumbnail_resize", "pixelate", "artifacts",
    "vertical_artifacts", "rhombus", "rain", "circle", "obstruction", "border", "translation", "shear",
    "elastic", "rotation", "backlight", "brightness", "contrast", "color_disortion", "gray_scale", "hue",
)

# (low-severity end, high-severity end) of each corruption's magnitude: settings.py @7a25541.
# quantization is stored reversed there ([8, 3]): fewer levels is the harsher end.
RANGES: dict[str, tuple[float, float]] = {
    "gaussian": (0.05, 0.18), "blur": (0.4, 0.95), "contrast": (0.33, 0.74), "brightness": (0.16, 0.51),
    "salt_pepper": (0.003, 0.032), "artifacts": (14, 170), "vertical_artifacts": (14, 180),
    "quantization": (8, 3), "color_disortion": (0.09, 0.40), "obstruction": (47, 125), "border": (9, 46),
    "rhombus": (9, 76), "circle": (7, 50), "rain": (12, 120), "rotation": (7, 50), "translation": (15, 62),
    "shear": (12, 39), "pixelate": (2, 4), "thumbnail_resize": (1.1, 3.25), "gray_scale": (0.49, 1.0),
    "hue": (0.05, 0.5), "elastic": (44, 110), "backlight": (0.11, 0.44),
}
INTEGER_RANGES = frozenset({
    "artifacts", "vertical_artifacts", "quantization", "obstruction", "border", "rhombus", "circle", "rain",
    "rotation", "translation", "shear", "pixelate", "elastic",
})

MIN_SIDE = 16  # the smallest H and W every corruption's geometry fits in


@dataclass
class CorruptionParams:
    """The drawn parameters of one corruption for a batch: per-image tensors in `fields`.

    Scalars are [B] tensors; variable-length lists (lines, shapes) are [B, L] tensors padded with zeros,
    with their lengths in a [B] field named ``count``. `size` is the (H, W) they were drawn for (positions
    depend on it). `indices` are the dataset indices the generators were keyed on.
    """

    name: str
    size: tuple[int, int]
    indices: torch.Tensor
    fields: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.numel())

    def __getitem__(self, key: str) -> torch.Tensor:
        return self.fields[key]

    def to(self, device: str | torch.device) -> CorruptionParams:
        return CorruptionParams(self.name, self.size, self.indices,
                                {k: v.to(device) for k, v in self.fields.items()})

    def select(self, rows: Sequence[int] | torch.Tensor) -> CorruptionParams:
        """The parameters of a subset of the batch (row positions, not dataset indices)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return CorruptionParams(self.name, self.size, self.indices[rows],
                                {k: v[rows.to(v.device)] for k, v in self.fields.items()})

    def as_records(self) -> list[dict]:
        """One plain dict per image (lists trimmed to their count), for logging as JSON."""
        count = self.fields.get("count")
        out = []
        for row in range(len(self)):
            record: dict = {"index": int(self.indices[row])}
            for key, value in self.fields.items():
                v = value[row].tolist()
                if isinstance(v, list) and count is not None:
                    v = v[: int(count[row])]
                record[key] = v
            out.append(record)
        return out


def image_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The generator of one image: a stable function of (seed, corruption, index)."""
    key = [int(seed) % 2**64, int(stable_hash(["rtool.noc", name], 16), 16), int(index) % 2**64]
    return np.random.default_rng(np.random.SeedSequence(key))


class _Draw:
    """Spec notation over one image's generator: U(a,b), I(a,b) with both ends, a random sign, and the
    corruption's magnitude (drawn from its range, or fixed at a severity in [0, 1])."""

    def __init__(self, rng: np.random.Generator, name: str, severity: float | None):
        self.rng, self.name, self.severity = rng, name, severity

    def U(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def I(self, a: int, b: int) -> int:  # noqa: E743 (spec notation)
        return int(self.rng.integers(a, b + 1)) if b >= a else int(a)

    def I_array(self, a: int, b: int, n: int) -> list[int]:  # noqa: N802
        return self.rng.integers(a, max(a, b) + 1, size=n).tolist()

    def U_array(self, a: float, b: float, n: int) -> list[float]:  # noqa: N802
        return self.rng.uniform(a, b, size=n).tolist()

    def sign(self) -> int:
        return 1 if self.rng.integers(0, 2) == 1 else -1

    def magnitude(self) -> float:
        lo, hi = RANGES[self.name]
        integer = self.name in INTEGER_RANGES
        if self.severity is not None:
            value = lo + self.severity * (hi - lo)
            return int(round(value)) if integer else float(value)
        if integer:
            return self.I(int(min(lo, hi)), int(max(lo, hi)))
        return self.U(min(lo, hi), max(lo, hi))

    def key(self) -> int:
        return int(self.rng.integers(0, 2**62))


def _noise(d: _Draw, H: int, W: int) -> dict:
    return {"amount": d.magnitude(), "key": d.key()}


def _salt_pepper(d: _Draw, H: int, W: int) -> dict:
    return {"amount": d.magnitude() / 2, "key": d.key()}


def _scalar(name: str) -> Callable:
    def draw(d: _Draw, H: int, W: int) -> dict:
        return {name: d.magnitude()}
    return draw


def _signed(name: str) -> Callable:
    def draw(d: _Draw, H: int, W: int) -> dict:
        return {name: d.sign() * d.magnitude()}
    return draw


def _lines(d: _Draw, H: int, W: int, vertical: bool) -> dict:
    # Horizontal dashes on rows of an H x W image; vertical ones are the same on the transposed image.
    rows, cols = (W, H) if vertical else (H, W)
    n = int(d.magnitude())
    return {"count": n, "line": d.I_array(1, rows - 2, n), "centre": d.I_array(2, cols - 3, n),
            "dots": d.I_array(0, 6, n), "gray": d.U(0, 1)}


def _shapes(d: _Draw, H: int, W: int, gray: bool) -> dict:
    n = int(d.magnitude())
    out = {"count": n, "row": d.I_array(7, H - 7, n), "col": d.I_array(7, W - 7, n)}
    if gray:
        out["gray"] = d.U_array(0, 1, n)
    return out


def _obstruction(d: _Draw, H: int, W: int) -> dict:
    side = min(int(d.magnitude()), H, W)
    return {"side": side, "top": d.I(0, H - side), "left": d.I(0, W - side), "gray": d.U(0, 1)}


def _border(d: _Draw, H: int, W: int) -> dict:
    return {"thickness": min(int(d.magnitude()), min(H, W) // 2), "gray": d.U(0, 1)}


def _translation(d: _Draw, H: int, W: int) -> dict:
    # Each axis draws its own magnitude; a fixed severity fixes both.
    tx = d.sign() * d.magnitude()
    ty = d.sign() * d.magnitude()
    return {"tx": tx, "ty": ty}


def _thumbnail(d: _Draw, H: int, W: int) -> dict:
    f = d.magnitude()
    return {"factor": f, "height": max(1, int(H / f)), "width": max(1, int(W / f))}


def _color(d: _Draw, H: int, W: int) -> dict:
    return {"channel": d.I(0, 2), "shift": d.magnitude()}


def _elastic(d: _Draw, H: int, W: int) -> dict:
    s = int(d.magnitude())
    axis = 0 if d.rng.integers(0, 2) == 1 else 1  # 0: drop the top s rows, 1: drop the left s columns
    return {"axis": axis, "cut": min(s, (H if axis == 0 else W) // 2)}


def _backlight(d: _Draw, H: int, W: int) -> dict:
    axis = int(d.rng.integers(0, 2))  # 0: split along x (columns), 1: along y (rows)
    D = W if axis == 0 else H
    split = D // 2 + d.I(math.floor(-D / 5), math.floor(D / 5))
    return {"axis": axis, "split": split, "shift": d.sign() * d.magnitude()}


DRAWS: dict[str, Callable[[_Draw, int, int], dict]] = {
    "quantization": _scalar("levels"),
    "gaussian": _noise,
    "salt_pepper": _salt_pepper,
    "blur": _scalar("weight"),
    "thumbnail_resize": _thumbnail,
    "pixelate": _scalar("block"),
    "artifacts": lambda d, H, W: _lines(d, H, W, vertical=False),
    "vertical_artifacts": lambda d, H, W: _lines(d, H, W, vertical=True),
    "rhombus": lambda d, H, W: _shapes(d, H, W, gray=True),
    "rain": lambda d, H, W: _shapes(d, H, W, gray=False),
    "circle": lambda d, H, W: _shapes(d, H, W, gray=True),
    "obstruction": _obstruction,
    "border": _border,
    "translation": _translation,
    "shear": _signed("degrees"),
    "elastic": _elastic,
    "rotation": _signed("degrees"),
    "backlight": _backlight,
    "brightness": _signed("shift"),
    "contrast": _scalar("weight"),
    "color_disortion": _color,
    "gray_scale": _scalar("weight"),
    "hue": _signed("shift"),
}
assert tuple(sorted(DRAWS)) == tuple(sorted(CORRUPTIONS))

_INT_FIELDS = frozenset({"count", "line", "centre", "dots", "row", "col", "side", "top", "left", "thickness",
                         "height", "width", "channel", "axis", "cut", "split", "key", "levels", "block",
                         "degrees", "tx", "ty"})


def check_name(name: str) -> str:
    if name not in DRAWS:
        raise UsageError(f"unknown corruption {name!r}; expected one of {', '.join(CORRUPTIONS)}")
    return name


def check_size(height: int, width: int) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise UsageError(f"images of {height}x{width} are too small for the corruptions; "
                         f"expected H and W of at least {MIN_SIDE}")


def _collate(records: list[dict]) -> dict[str, torch.Tensor]:
    out = {}
    for key in records[0] if records else ():
        values = [r[key] for r in records]
        dtype = torch.int64 if key in _INT_FIELDS else torch.float64
        if isinstance(values[0], list):
            width = max((len(v) for v in values), default=0)
            table = torch.zeros((len(values), width), dtype=dtype)
            for row, v in enumerate(values):
                if v:
                    table[row, : len(v)] = torch.tensor(v, dtype=dtype)
            out[key] = table
        else:
            out[key] = torch.tensor(values, dtype=dtype)
    return out


def draw_params(name: str, size: tuple[int, int], indices: Sequence[int] | torch.Tensor | int, seed: int = 0,
                severity: float | None = None) -> CorruptionParams:
    """Draw the parameters of corruption `name` for images of `size` = (H, W).

    `indices` are the dataset indices of the batch (an int n means 0..n-1): image i's parameters are a
    function of (seed, name, i) only. `severity` in [0, 1] fixes the magnitude at that point of the
    corruption's range (0 = mildest, 1 = harshest; positions, signs and grays stay random), for previews.
    """
    check_name(name)
    H, W = int(size[0]), int(size[1])
    check_size(H, W)
    if severity is not None and not 0.0 <= float(severity) <= 1.0:
        raise UsageError(f"severity {severity!r} is outside [0, 1]")
    if isinstance(indices, int):
        indices = range(indices)
    index_tensor = torch.as_tensor(list(indices) if not isinstance(indices, torch.Tensor) else indices,
                                   dtype=torch.int64).reshape(-1)
    draw = DRAWS[name]
    records = [draw(_Draw(image_rng(seed, name, int(i)), name, severity), H, W) for i in index_tensor.tolist()]
    fields = _collate(records)
    if not records:  # an empty batch still names its fields
        fields = {k: v[:0] for k, v in _collate([draw(_Draw(image_rng(0, name, 0), name, severity), H, W)]).items()}
    return CorruptionParams(name, (H, W), index_tensor, fields)
