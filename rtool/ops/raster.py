"""Mesh rasterizer: the Python face of torch.ops.rtool.rasterize, its edge-aware backward and the image-only
rasterize_image."""
from __future__ import annotations

import torch

from rtool.ops._library import operators_loaded, require_operators

DEFAULT_NEAR = 0.1
DEFAULT_FAR = 100.0


def rasterize(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    colors: torch.Tensor,
    image_size: int,
    near: float = DEFAULT_NEAR,
    far: float = DEFAULT_FAR,
    cull_backfaces: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rasterizes B views of one mesh with flat per-face colours.

    vertices [B, V, 3] float32/float64: projected vertices (ndc x, ndc y in [-1, 1] on screen, +y up;
    camera depth z > 0). faces [F, 3] int64 vertex ids. colors [B, F, C] (vertices' dtype) per face and view.
    Pixel (row i, col j) of an S x S image samples the point x = j, y = S - 1 - i of the screen frame
    x = (ndc_x * S + S - 1) / 2, y = (ndc_y * S + S - 1) / 2 (row 0 is the top). A face is drawn where the
    pixel centre lies inside it (edges included) and its perspective-correct depth lies in [near, far];
    the nearest face wins, the lower face id on an exact tie. With `cull_backfaces`, faces that wind
    clockwise on screen are skipped; degenerate faces and faces with a vertex at z <= 0 are never drawn.

    Returns image [B, C, S, S] (background 0), face_index [B, S, S] int64 (-1 = background),
    bary [B, S, S, 3] screen-space barycentrics and depth [B, S, S] (both 0 on background).

    Differentiable in `colors` (exactly) and `vertices` (edge-aware: every boundary between neighbouring
    pixels of different faces moves with the owning edge, in the spirit of Kato et al., CVPR 2018), through
    `image` only: face_index, bary and depth are returned as constants.
    """
    require_operators("rasterize")
    return torch.ops.rtool.rasterize(vertices, faces, colors, image_size, near, far, cull_backfaces)


def rasterize_image(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    colors: torch.Tensor,
    image_size: int,
    supersample: int = 1,
    near: float = DEFAULT_NEAR,
    far: float = DEFAULT_FAR,
    cull_backfaces: bool = True,
) -> torch.Tensor:
    """The image of `rasterize` drawn at `image_size * supersample` and averaged over supersample x supersample
    blocks: [B, C, image_size, image_size], bit for bit `F.avg_pool2d(rasterize(..., image_size * supersample)[0],
    supersample)`, without the full-size image, face index, barycentrics and depth (for renders that need no
    gradient: it is not differentiable)."""
    require_operators("rasterize_image")
    return torch.ops.rtool.rasterize_image(vertices, faces, colors, image_size, supersample, near, far, cull_backfaces)


def rasterize_backward(
    grad_image: torch.Tensor,
    image: torch.Tensor,
    face_index: torch.Tensor,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cull_backfaces: bool = True,
) -> torch.Tensor:
    """dL/d(vertices) [B, V, 3] given dL/d(image) of `rasterize` (the depth column is always 0)."""
    require_operators("rasterize_backward")
    return torch.ops.rtool.rasterize_backward(grad_image, image, face_index, vertices, faces, cull_backfaces)


def color_gradient(grad_image: torch.Tensor, face_index: torch.Tensor, num_faces: int) -> torch.Tensor:
    """dL/d(colors) [B, F, C]: each face collects the image gradient of the pixels it covers."""
    batch, channels, height, width = grad_image.shape
    grads = grad_image.reshape(batch, channels, height * width).transpose(1, 2)  # [B, P, C]
    ids = face_index.reshape(batch, height * width)
    covered = (ids >= 0).unsqueeze(-1).to(grads.dtype)
    out = grads.new_zeros((batch, num_faces, channels))
    if num_faces == 0:
        return out
    return out.scatter_add_(1, ids.clamp(min=0).unsqueeze(-1).expand(-1, -1, channels), grads * covered)


if operators_loaded():

    @torch.library.register_fake("rtool::rasterize")
    def _rasterize_fake(vertices, faces, colors, image_size, near=DEFAULT_NEAR, far=DEFAULT_FAR, cull_backfaces=True):
        torch._check(vertices.dim() == 3 and vertices.shape[2] == 3, lambda: "vertices must be [B, V, 3]")
        torch._check(faces.dim() == 2 and faces.shape[1] == 3, lambda: "faces must be [F, 3]")
        torch._check(colors.dim() == 3, lambda: "colors must be [B, F, C]")
        batch, size = vertices.shape[0], image_size
        image = vertices.new_empty((batch, colors.shape[2], size, size))
        face_index = vertices.new_empty((batch, size, size), dtype=torch.long)
        bary = vertices.new_empty((batch, size, size, 3))
        depth = vertices.new_empty((batch, size, size))
        return image, face_index, bary, depth

    @torch.library.register_fake("rtool::rasterize_image")
    def _rasterize_image_fake(vertices, faces, colors, image_size, supersample=1, near=DEFAULT_NEAR, far=DEFAULT_FAR,
                              cull_backfaces=True):
        torch._check(vertices.dim() == 3 and vertices.shape[2] == 3, lambda: "vertices must be [B, V, 3]")
        torch._check(faces.dim() == 2 and faces.shape[1] == 3, lambda: "faces must be [F, 3]")
        torch._check(colors.dim() == 3, lambda: "colors must be [B, F, C]")
        return vertices.new_empty((vertices.shape[0], colors.shape[2], image_size, image_size))

    @torch.library.register_fake("rtool::rasterize_backward")
    def _rasterize_backward_fake(grad_image, image, face_index, vertices, faces, cull_backfaces=True):
        return torch.empty_like(vertices)

    def _setup_context(ctx, inputs, output):
        vertices, faces, colors, _size, _near, _far, cull = inputs
        image, face_index, bary, depth = output
        ctx.save_for_backward(vertices, faces, image, face_index)
        ctx.num_faces = colors.shape[1]
        ctx.cull = cull
        ctx.mark_non_differentiable(face_index, bary, depth)

    def _backward(ctx, grad_image, _grad_index, _grad_bary, _grad_depth):
        vertices, faces, image, face_index = ctx.saved_tensors
        if grad_image is None:
            return None, None, None, None, None, None, None
        grad_image = grad_image.contiguous()
        grad_vertices = grad_colors = None
        if ctx.needs_input_grad[0]:
            grad_vertices = torch.ops.rtool.rasterize_backward(grad_image, image, face_index, vertices, faces, ctx.cull)
        if ctx.needs_input_grad[2]:
            grad_colors = color_gradient(grad_image, face_index, ctx.num_faces)
        return grad_vertices, None, grad_colors, None, None, None, None

    torch.library.register_autograd("rtool::rasterize", _backward, setup_context=_setup_context)
