"""Semantic maps (spec §5): f on an azimuth x elevation grid (or over azimuth at a fixed elevation), and the
spec's `map.pt` dict (plain tensors and lists, loadable with `torch.load(..., weights_only=True)`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rtool.errors import UsageError
from rtool.semantic.space import (AZIMUTH_GRID_1D, AZIMUTH_GRID_2D, DIMENSIONS, ELEVATION_GRID_2D, FIXED_ELEVATION,
                                  grid_values)

Objective = Callable[[torch.Tensor], torch.Tensor]  # u [N, n] degrees -> f(u) [N]


@dataclass(frozen=True)
class MapSettings:
    """The grid of a semantic map; None steps take the spec's (3° in 2-D, 2° in 1-D)."""

    grid: str = "2d"                    # "2d": azimuth x elevation; "1d": azimuth at `elevation`
    azimuth_step: float | None = None
    elevation_step: float | None = None
    elevation: float = FIXED_ELEVATION  # the 1-D map's elevation
    views_per_batch: int = 64           # views rendered and classified together

    def __post_init__(self):
        if self.grid not in DIMENSIONS:
            raise UsageError(f"grid {self.grid!r} is unknown; expected one of {', '.join(DIMENSIONS)}")
        if not isinstance(self.views_per_batch, int) or self.views_per_batch < 1:
            raise UsageError(f"views_per_batch={self.views_per_batch!r}: expected a positive integer")
        for name in ("azimuth_step", "elevation_step"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"{name}={value!r}: expected a positive number of degrees")
        if self.grid == "1d" and self.elevation_step is not None:
            raise UsageError("elevation_step applies to the 2-D grid only; the 1-D map has one elevation")

    def axes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(azimuths [W], elevations [H]) in degrees, float64."""
        if self.grid == "1d":
            start, stop, step = AZIMUTH_GRID_1D
            azimuths = grid_values(start, stop, step if self.azimuth_step is None else self.azimuth_step, "azimuth")
            return azimuths, torch.tensor([self.elevation], dtype=torch.float64)
        az_start, az_stop, az_step = AZIMUTH_GRID_2D
        el_start, el_stop, el_step = ELEVATION_GRID_2D
        az_step = az_step if self.azimuth_step is None else self.azimuth_step
        el_step = el_step if self.elevation_step is None else self.elevation_step
        return (grid_values(az_start, az_stop, az_step, "azimuth"),
                grid_values(el_start, el_stop, el_step, "elevation"))


@dataclass(frozen=True)
class SemanticMap:
    """scores[i, j] = f(azimuth=azimuths[j], elevation=elevations[i]); rows are elevations (one row in 1-D)."""

    azimuths: torch.Tensor     # [W] degrees
    elevations: torch.Tensor   # [H] degrees (H = 1 for a 1-D map)
    scores: torch.Tensor       # [H, W] float32 in [0, 1]
    grid: str = "2d"

    @property
    def mean(self) -> float:
        return float(self.scores.mean())

    def meshgrid(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(xx, yy) [H, W]: azimuth and elevation of each cell."""
        yy, xx = torch.meshgrid(self.elevations, self.azimuths, indexing="ij")
        return xx, yy


def semantic_map(f: Objective, settings: MapSettings = MapSettings()) -> SemanticMap:
    """Evaluate f over the grid of `settings`, `views_per_batch` views per call, without gradients."""
    azimuths, elevations = settings.axes()
    yy, xx = torch.meshgrid(elevations, azimuths, indexing="ij")
    if settings.grid == "1d":
        u = xx.reshape(-1, 1)
    else:
        u = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    parts = []
    with torch.no_grad():
        for k in range(0, u.shape[0], settings.views_per_batch):
            parts.append(f(u[k:k + settings.views_per_batch]).detach().float().cpu().reshape(-1))
    scores = torch.cat(parts)
    if scores.numel() != u.shape[0]:
        raise UsageError(f"the objective returned {scores.numel()} scores for {u.shape[0]} views; expected one each")
    return SemanticMap(azimuths, elevations, scores.reshape(xx.shape), settings.grid)


def average_map(maps: list[SemanticMap]) -> SemanticMap:
    """The cell-wise mean of maps on one grid: the per-class average map over a class's objects, or the spec
    §10 "data semantic map" (the mean over networks and shapes, which shows the dataset's viewpoint bias)."""
    if not maps:
        raise UsageError("no maps to average: expected at least one")
    first = maps[0]
    for other in maps[1:]:
        if (other.grid != first.grid or not torch.equal(other.azimuths, first.azimuths)
                or not torch.equal(other.elevations, first.elevations)):
            raise UsageError(f"maps on different grids ({tuple(first.scores.shape)} {first.grid} vs "
                             f"{tuple(other.scores.shape)} {other.grid}): expected one grid for all")
    return SemanticMap(first.azimuths, first.elevations, torch.stack([m.scores for m in maps]).mean(0), first.grid)


def _angles_tensor(values: torch.Tensor) -> torch.Tensor:
    """Integer degrees as int64 (the original's int arrays); otherwise float64."""
    if bool((values == values.round()).all()):
        return values.round().to(torch.int64)
    return values.to(torch.float64)


def map_dict(result: SemanticMap, class_nb: int, network_name: str, shape_id: str | None = None) -> dict:
    """The spec §5 `map.pt` dict: {xx, yy, z, class_nb, network_name, shape_id, grid}, plain tensors."""
    xx, yy = result.meshgrid()
    record = {"xx": _angles_tensor(xx).contiguous(), "yy": _angles_tensor(yy).contiguous(),
              "z": result.scores.to(torch.float32).contiguous(), "class_nb": int(class_nb),
              "network_name": str(network_name), "grid": result.grid}
    if shape_id is not None:
        record["shape_id"] = str(shape_id)
    return record


def map_from_dict(record: dict) -> SemanticMap:
    """The inverse of `map_dict` (for a dict read with weights_only=True)."""
    try:
        xx, yy, z = record["xx"], record["yy"], record["z"]
    except (KeyError, TypeError):
        raise UsageError("map record: expected a dict with xx, yy and z") from None
    if not (xx.shape == yy.shape == z.shape) or z.dim() != 2:
        raise UsageError(f"map record: xx, yy, z must share one [H, W] shape, got {tuple(xx.shape)}, "
                         f"{tuple(yy.shape)}, {tuple(z.shape)}")
    grid = record.get("grid", "2d" if z.shape[0] > 1 else "1d")
    return SemanticMap(xx[0].to(torch.float64), yy[:, 0].to(torch.float64), z.to(torch.float32), grid)
