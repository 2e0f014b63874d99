"""`Renderer`: views of a mesh as images [B, 3, S, S], differentiable in azimuth and elevation (degrees)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rtool.errors import UsageError
from rtool.ops.raster import DEFAULT_FAR, DEFAULT_NEAR, rasterize, rasterize_image
from rtool.render.camera import CAMERA_DISTANCE, double_sided, eye_position, face_shading, look_at, perspective
from rtool.render.mesh import Mesh

Angles = float | Sequence[float] | torch.Tensor


@dataclass
class Renderer:
    """The semantic spec §3 renderer: white faces, flat world-fixed light from +Y (ambient 0.5 + 0.5),
    double-sided faces with back-face culling, look-at camera at `distance`, 30° half-angle perspective,
    drawn at `supersample` x `image_size` and average-pooled, black background. No ImageNet normalisation.

        renderer = Renderer(image_size=224)
        images = renderer.render(procedural_mesh("cup"), azimuth=[0, 90, 180], elevation=30)
    """

    image_size: int = 224
    supersample: int = 2
    distance: float = CAMERA_DISTANCE
    near: float = DEFAULT_NEAR
    far: float = DEFAULT_FAR
    device: str | torch.device = "cpu"
    dtype: torch.dtype = torch.float32
    views_per_pass: int = 32  # views rasterized together; bounds the 2x-size intermediate images in memory

    def __post_init__(self):
        if self.image_size < 1 or self.supersample < 1 or self.views_per_pass < 1:
            raise UsageError(f"image_size, supersample and views_per_pass must be >= 1, got {self.image_size}, "
                             f"{self.supersample}, {self.views_per_pass}")

    def angles(self, azimuth: Angles, elevation: Angles) -> tuple[torch.Tensor, torch.Tensor]:
        """Both angles as [B] tensors (a scalar broadcasts to the other's length); tensors keep their graph."""
        def as_tensor(value):
            if isinstance(value, torch.Tensor):
                return value.to(device=self.device, dtype=self.dtype).reshape(-1)
            return torch.as_tensor(value, dtype=self.dtype, device=self.device).reshape(-1)

        az, el = as_tensor(azimuth), as_tensor(elevation)
        if az.numel() != el.numel():
            if az.numel() == 1:
                az = az.expand(el.numel())
            elif el.numel() == 1:
                el = el.expand(az.numel())
            else:
                raise UsageError(f"azimuth has {az.numel()} values but elevation has {el.numel()}; "
                                 "expected equal lengths or one scalar")
        return az, el

    def project(self, mesh: Mesh, azimuth: torch.Tensor, elevation: torch.Tensor) -> torch.Tensor:
        """[B, V, 3] (ndc x, ndc y, depth) of the mesh's vertices in each view."""
        vertices = mesh.vertices.to(device=self.device, dtype=self.dtype)
        return perspective(look_at(vertices, eye_position(azimuth, elevation, self.distance)))

    def render(self, mesh: Mesh, azimuth: Angles, elevation: Angles) -> torch.Tensor:
        """Images [B, 3, S, S] in [0, 1] of `mesh` seen from each (azimuth, elevation) in degrees."""
        az, el = self.angles(azimuth, elevation)
        vertices = mesh.vertices.to(device=self.device, dtype=self.dtype)
        faces = double_sided(mesh.faces.to(self.device))
        shade = face_shading(vertices, faces)  # [2F], world-fixed: the same in every view
        if az.numel() <= self.views_per_pass:
            return self._render_pass(vertices, faces, shade, az, el)
        step = self.views_per_pass
        return torch.cat([self._render_pass(vertices, faces, shade, az[k:k + step], el[k:k + step])
                          for k in range(0, az.numel(), step)])

    def _render_pass(self, vertices, faces, shade, az, el) -> torch.Tensor:
        colors = shade[None, :, None].expand(az.numel(), -1, 3)
        projected = perspective(look_at(vertices, eye_position(az, el, self.distance)))
        if not (torch.is_grad_enabled() and (projected.requires_grad or colors.requires_grad)):
            # No graph to build: the image alone, averaged in the kernel (the same bits as the path below).
            return rasterize_image(projected, faces, colors, self.image_size, self.supersample, self.near, self.far,
                                   True)
        internal = self.image_size * self.supersample
        image = rasterize(projected, faces, colors, internal, self.near, self.far, True)[0]
        if self.supersample > 1:
            image = F.avg_pool2d(image, self.supersample)
        return image
