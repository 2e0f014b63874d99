"""Camera, projection and lighting in differentiable PyTorch (semantic spec §3, the neural mesh renderer's
defaults): gradients reach the angles in degrees."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

VIEW_HALF_ANGLE_DEG = 30.0
CAMERA_DISTANCE = 1.0 / math.tan(math.radians(VIEW_HALF_ANGLE_DEG)) + 1.0  # 2.732
AMBIENT = 0.5
DIRECTIONAL = 0.5
LIGHT_DIRECTION = (0.0, 1.0, 0.0)


def eye_position(azimuth: torch.Tensor, elevation: torch.Tensor, distance: float = CAMERA_DISTANCE) -> torch.Tensor:
    """[B, 3] camera positions for angles in degrees (converted inside the graph)."""
    az, el = torch.deg2rad(azimuth), torch.deg2rad(elevation)
    return distance * torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), -torch.cos(el) * torch.cos(az)], -1)


def look_at(vertices: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
    """World vertices [V, 3] -> camera coordinates [B, V, 3] for eyes [B, 3] looking at the origin, up = +Y."""
    up = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
    z_axis = F.normalize(-eye, dim=-1, eps=1e-5)
    x_axis = F.normalize(torch.linalg.cross(up, z_axis, dim=-1), dim=-1, eps=1e-5)
    y_axis = F.normalize(torch.linalg.cross(z_axis, x_axis, dim=-1), dim=-1, eps=1e-5)
    rotation = torch.stack([x_axis, y_axis, z_axis], dim=1)  # [B, 3, 3], rows x; y; z
    return torch.einsum("bij,bvj->bvi", rotation, vertices.unsqueeze(0) - eye.unsqueeze(1))


def perspective(camera: torch.Tensor, half_angle_deg: float = VIEW_HALF_ANGLE_DEG) -> torch.Tensor:
    """Camera coordinates [B, V, 3] -> (ndc x, ndc y, depth z): x / (z tan a), y / (z tan a)."""
    scale = math.tan(math.radians(half_angle_deg))
    z = camera[..., 2]
    return torch.stack([camera[..., 0] / (z * scale), camera[..., 1] / (z * scale), z], dim=-1)


def double_sided(faces: torch.Tensor) -> torch.Tensor:
    """[2F, 3]: every face followed (after all of them) by its reversed copy; the rasterizer's back-face
    culling then draws exactly the camera-facing copy."""
    return torch.cat([faces, faces[:, [0, 2, 1]]], dim=0)


def face_shading(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Flat world-space lighting per face [F]: 0.5 + 0.5 max(0, n . +Y), n = normalize((v0-v1) x (v2-v1)).
    For the drawn copy, n points towards the camera."""
    corners = vertices[faces]  # [F, 3, 3]
    normal = torch.linalg.cross(corners[:, 0] - corners[:, 1], corners[:, 2] - corners[:, 1], dim=-1)
    normal = F.normalize(normal, dim=-1, eps=1e-12)
    light = torch.tensor(LIGHT_DIRECTION, dtype=vertices.dtype, device=vertices.device)
    return AMBIENT + DIRECTIONAL * (normal @ light).clamp(min=0)
