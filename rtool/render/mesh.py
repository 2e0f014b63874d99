"""A triangle mesh and the normalisation every loaded mesh gets (semantic spec §2)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from rtool.errors import UsageError


@dataclass(frozen=True)
class Mesh:
    """vertices [V, 3] float, faces [F, 3] int64 (0-based ids), and a name for figures and errors."""

    vertices: torch.Tensor
    faces: torch.Tensor
    name: str = "mesh"

    def __post_init__(self):
        if self.vertices.dim() != 2 or self.vertices.shape[1] != 3:
            raise UsageError(f"mesh {self.name!r}: vertices must be [V, 3], got {tuple(self.vertices.shape)}")
        if self.faces.dim() != 2 or self.faces.shape[1] != 3:
            raise UsageError(f"mesh {self.name!r}: faces must be [F, 3], got {tuple(self.faces.shape)}")

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def to(self, device=None, dtype=None) -> "Mesh":
        return Mesh(self.vertices.to(device=device, dtype=dtype), self.faces.to(device=device), self.name)

    def normalized(self) -> "Mesh":
        return Mesh(normalize_vertices(self.vertices, self.name), self.faces, self.name)


def normalize_vertices(vertices: torch.Tensor, name: str = "mesh") -> torch.Tensor:
    """The neural mesh renderer's load_obj normalisation: shift the minimum corner to 0, divide by the largest
    coordinate, scale by 2, centre the bounding box. The longest side then spans 2, centred at the origin."""
    if vertices.numel() == 0:
        raise UsageError(f"mesh {name!r} has no vertices")
    v = vertices - vertices.amin(dim=0)
    scale = v.abs().max()
    if not scale > 0:
        raise UsageError(f"mesh {name!r} is a single point (all vertices equal); nothing to render")
    v = v / scale * 2
    return v - v.amax(dim=0) / 2
