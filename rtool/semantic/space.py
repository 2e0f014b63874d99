"""The semantic parameter space (spec §1, §5): u = (azimuth, elevation) in degrees, or azimuth alone at a
fixed elevation; the domain Ω and the default map grids."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from rtool.errors import UsageError

FIXED_ELEVATION = 35.0  # elevation of every 1-D view (spec §1)
DOMAIN_2D = ((0.0, -10.0), (360.0, 90.0))  # Ω = [0, 360] x [-10, 90], lower corner and upper corner
DOMAIN_1D = ((0.0,), (360.0,))
# Default grids, half-open [start, stop) with step (spec §5): 120 x 34 = 4,080 views in 2-D, 180 in 1-D.
AZIMUTH_GRID_2D = (0.0, 360.0, 3.0)
ELEVATION_GRID_2D = (-10.0, 90.0, 3.0)
AZIMUTH_GRID_1D = (0.0, 360.0, 2.0)
DIMENSIONS = {"1d": 1, "2d": 2}


def domain(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) of Ω as float64 [n] tensors for n = 1 (azimuth) or 2 (azimuth, elevation)."""
    if n not in (1, 2):
        raise UsageError(f"semantic space dimension {n}: expected 1 (azimuth) or 2 (azimuth, elevation)")
    low, high = DOMAIN_1D if n == 1 else DOMAIN_2D
    return torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)


def grid_values(start: float, stop: float, step: float, name: str) -> torch.Tensor:
    """start, start + step, ... < stop (float64)."""
    if not step > 0:
        raise UsageError(f"{name} step {step!r}: expected a positive number of degrees")
    values = torch.arange(start, stop - 1e-9, step, dtype=torch.float64)
    if values.numel() == 0:
        raise UsageError(f"{name} grid [{start:g}, {stop:g}) step {step:g} is empty")
    return values


def check_points(points: Sequence[Sequence[float]], n: int, what: str = "start point") -> torch.Tensor:
    """Points [P, n] float64 inside Ω; a point of the wrong length or outside Ω is a UsageError."""
    low, high = domain(n)
    rows = []
    for point in points:
        values = [float(v) for v in (point if isinstance(point, Sequence) else [point])]
        if len(values) != n:
            names = "azimuth, elevation" if n == 2 else "azimuth"
            raise UsageError(f"{what} {tuple(values)}: expected {n} value(s) ({names})")
        row = torch.tensor(values, dtype=torch.float64)
        if bool(((row < low) | (row > high)).any()):
            bounds = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in zip(low.tolist(), high.tolist()))
            raise UsageError(f"{what} {tuple(values)} is outside the domain {bounds} (degrees)")
        rows.append(row)
    if not rows:
        raise UsageError(f"no {what}s given: expected at least one")
    return torch.stack(rows)


def azimuth_elevation(u: torch.Tensor, fixed_elevation: float = FIXED_ELEVATION) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns of u [N, n] as (azimuth [N], elevation [N]); n = 1 uses `fixed_elevation`."""
    if u.dim() != 2 or u.shape[1] not in (1, 2):
        raise UsageError(f"viewpoints must be [N, 1] or [N, 2] (azimuth[, elevation]), got {tuple(u.shape)}")
    if u.shape[1] == 1:
        return u[:, 0], torch.full_like(u[:, 0], fixed_elevation)
    return u[:, 0], u[:, 1]
