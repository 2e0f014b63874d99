"""Plain-PyTorch versions of every rtool operator: the oracle for tests and the baseline for benchmarks."""
from __future__ import annotations

import torch
import torch.nn.functional as F

CONSTANT_RANGE_TOLERANCE = 1e-6  # same as kConstantRangeTolerance in csrc/scorecam/bilinear.h


def _rows(batch: int, num_channels: int, channels: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    if channels is None:
        images = torch.arange(batch, device=device).repeat_interleave(num_channels)
        chans = torch.arange(num_channels, device=device).repeat(batch)
    elif channels.dim() == 1:
        images = torch.arange(batch, device=device).repeat_interleave(channels.numel())
        chans = channels.repeat(batch)
    else:
        images, chans = channels[:, 0], channels[:, 1]
    return images, chans


def scorecam_masks_ref(
    images: torch.Tensor,
    activations: torch.Tensor,
    mode: str = "parity",
    channels: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for rtool.ops.scorecam_masks: F.interpolate, per-map range, broadcast multiply."""
    batch, num_channels = activations.shape[:2]
    row_image, row_channel = _rows(batch, num_channels, channels, images.device)
    maps = activations.float()
    if mode == "parity":
        maps = maps.relu()
    up = F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)
    up = up[row_image, row_channel]  # [rows, H, W]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    ranges = hi - lo
    # A constant map resamples to float noise (weights that do not sum to exactly 1): call it range 0,
    # as the kernels do.
    ranges = torch.where(ranges <= CONSTANT_RANGE_TOLERANCE * torch.maximum(hi, -lo), torch.zeros_like(ranges), ranges)
    if mode == "parity":
        mask = up / torch.where(ranges > 0, ranges, torch.ones_like(ranges))
    elif mode == "minmax":
        mask = torch.where(ranges > 0, (up - lo) / (ranges + eps), torch.zeros_like(up))
    else:
        raise ValueError(f"mode must be 'parity' or 'minmax', got {mode!r}")
    masked = (images[row_image].float() * mask[:, None]).to(images.dtype)
    return masked, ranges.reshape(-1)


# ---------------------------------------------------------------------------------------------------------
# Mesh rasterizer (rtool.ops.rasterize / rasterize_backward): dense references, every pixel against every
# face, the same arithmetic as csrc/raster/raster_math.h.


def _screen_faces(view: torch.Tensor, faces: torch.Tensor, size: int, cull: bool):
    """Per face: pixel-frame corners x, y [F, 3], inverse depths [F, 3], doubled area [F], drawn mask [F]."""
    corners = view[faces]  # [F, 3, 3]
    x = 0.5 * (corners[..., 0] * size + size - 1)
    y = 0.5 * (corners[..., 1] * size + size - 1)
    inv_z = 1.0 / corners[..., 2]
    area2 = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    drawn = (corners[..., 2] > 0).all(1) & torch.isfinite(x).all(1) & torch.isfinite(y).all(1)
    drawn &= torch.isfinite(area2) & (area2 != 0)
    if cull:
        drawn &= area2 > 0
    return x, y, inv_z, area2, drawn


def rasterize_ref(vertices, faces, colors, image_size, near=0.1, far=100.0, cull_backfaces=True, chunk=2048):
    """Reference for rtool.ops.rasterize: each pixel tests every face (pixels in chunks of `chunk`)."""
    batch, channels, s = vertices.shape[0], colors.shape[2], image_size
    dtype, device = vertices.dtype, vertices.device
    image = torch.zeros(batch, channels, s, s, dtype=dtype, device=device)
    face_index = torch.full((batch, s * s), -1, dtype=torch.long, device=device)
    bary = torch.zeros(batch, s * s, 3, dtype=dtype, device=device)
    depth = torch.zeros(batch, s * s, dtype=dtype, device=device)
    rows, cols = torch.meshgrid(torch.arange(s, device=device), torch.arange(s, device=device), indexing="ij")
    pix_x = cols.reshape(-1).to(dtype)
    pix_y = (s - 1 - rows).reshape(-1).to(dtype)
    if faces.shape[0] == 0:
        return image, face_index.view(batch, s, s), bary.view(batch, s, s, 3), depth.view(batch, s, s)
    for b in range(batch):
        x, y, inv_z, area2, drawn = _screen_faces(vertices[b], faces, s, cull_backfaces)
        for start in range(0, s * s, chunk):
            px = pix_x[start:start + chunk, None]  # [P, 1] against [F]
            py = pix_y[start:start + chunk, None]
            w0 = ((x[:, 1] - px) * (y[:, 2] - py) - (x[:, 2] - px) * (y[:, 1] - py)) / area2
            w1 = ((x[:, 2] - px) * (y[:, 0] - py) - (x[:, 0] - px) * (y[:, 2] - py)) / area2
            w2 = ((x[:, 0] - px) * (y[:, 1] - py) - (x[:, 1] - px) * (y[:, 0] - py)) / area2
            z = 1.0 / (w0 * inv_z[:, 0] + w1 * inv_z[:, 1] + w2 * inv_z[:, 2])
            hit = drawn & (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & (z >= near) & (z <= far)
            z_hit = torch.where(hit, z, torch.full_like(z, float("inf")))
            best, best_face = z_hit.min(dim=1)  # min returns the first (lowest id) of equal values
            found = torch.isfinite(best)
            sel = best_face[:, None]
            ws = torch.stack([w0.gather(1, sel), w1.gather(1, sel), w2.gather(1, sel)], dim=-1)[:, 0]
            face_index[b, start:start + chunk] = torch.where(found, best_face, -1)
            depth[b, start:start + chunk] = torch.where(found, best, torch.zeros_like(best))
            bary[b, start:start + chunk] = torch.where(found[:, None], ws, torch.zeros_like(ws))
        ids = face_index[b]
        covered = ids >= 0
        flat = torch.where(covered[:, None], colors[b][ids.clamp(min=0)], torch.zeros((), dtype=dtype, device=device))
        image[b] = flat.T.reshape(channels, s, s)
    return image, face_index.view(batch, s, s), bary.view(batch, s, s, 3), depth.view(batch, s, s)


def _boundary_gradient_ref(x, y, area2, px, py, qx, qy, axis, direction, coef):
    """Vectorised twin of raster_math.h boundary_gradient over N pairs: (ok [N], grad [N, 3, 2])."""
    sign = torch.where(area2 > 0, 1.0, -1.0).to(x.dtype)
    ep, eq = [], []
    for k in range(3):
        a, b = (k + 1) % 3, (k + 2) % 3
        dx, dy = x[:, b] - x[:, a], y[:, b] - y[:, a]
        ep.append(sign * (dx * (py - y[:, a]) - dy * (px - x[:, a])))
        eq.append(sign * (dx * (qy - y[:, a]) - dy * (qx - x[:, a])))
    ep, eq = torch.stack(ep, 1), torch.stack(eq, 1)  # [N, 3]
    crossing = (eq < 0) & (ep >= 0)
    t = torch.where(crossing, ep / torch.where(crossing, ep - eq, torch.ones_like(ep)), torch.full_like(ep, 2.0))
    t_min, edge = t.min(dim=1)  # first minimum, as the kernel's strict '<' scan
    a, b = (edge + 1) % 3, (edge + 2) % 3
    take = lambda v, i: v.gather(1, i[:, None])[:, 0]  # noqa: E731
    u, w = (x, y) if axis == 0 else (y, x)
    ua, ub, wa, wb = take(u, a), take(u, b), take(w, a), take(w, b)
    w_line = py if axis == 0 else px
    dw = wb - wa
    ok = crossing.any(1) & (dw.abs() > 1e-9)
    dw_safe = torch.where(ok, dw, torch.ones_like(dw))
    s = (w_line - wa) / dw_safe
    du = ub - ua
    g = coef * direction * dw * dw / torch.where(ok, du * du + dw * dw, torch.ones_like(du))
    grad = torch.zeros(x.shape[0], 3, 2, dtype=x.dtype, device=x.device)
    rows = torch.arange(x.shape[0], device=x.device)
    u_slot, w_slot = axis, 1 - axis
    grad[rows, a, u_slot] += g * (1 - s)
    grad[rows, b, u_slot] += g * s
    grad[rows, a, w_slot] += g * (ub - ua) * (s - 1) / dw_safe
    grad[rows, b, w_slot] += g * -(ub - ua) * s / dw_safe
    return ok, torch.where(ok[:, None, None], grad, torch.zeros_like(grad))


def rasterize_backward_ref(grad_image, image, face_index, vertices, faces, cull_backfaces=True):
    """Reference for rtool.ops.rasterize_backward, vectorised over the pixel pairs that change face."""
    batch, channels, s = image.shape[0], image.shape[1], image.shape[2]
    grad_vertices = torch.zeros_like(vertices)
    for b in range(batch):
        x, y, _inv_z, area2, _drawn = _screen_faces(vertices[b], faces, s, cull_backfaces)
        ids = face_index[b]
        flat_grad = grad_vertices[b]
        for axis in (0, 1):
            fp = ids[:, :-1] if axis == 0 else ids[:-1, :]
            fq = ids[:, 1:] if axis == 0 else ids[1:, :]
            r, c = torch.nonzero(fp != fq, as_tuple=True)
            if r.numel() == 0:
                continue
            r2, c2 = r + axis, c + (1 - axis)
            fpp, fqq = ids[r, c], ids[r2, c2]
            img, gimg = image[b], grad_image[b]
            coef = ((img[:, r, c] - img[:, r2, c2]) * 0.5 * (gimg[:, r, c] + gimg[:, r2, c2])).sum(0)
            px, py = c.to(x.dtype), (s - 1 - r).to(x.dtype)
            qx, qy = c2.to(x.dtype), (s - 1 - r2).to(x.dtype)
            direction = 1.0 if axis == 0 else -1.0
            live = coef != 0
            fp_c, fq_c = fpp.clamp(min=0), fqq.clamp(min=0)
            ok_p, g_p = _boundary_gradient_ref(x[fp_c], y[fp_c], area2[fp_c], px, py, qx, qy, axis, direction, coef)
            ok_q, g_q = _boundary_gradient_ref(x[fq_c], y[fq_c], area2[fq_c], qx, qy, px, py, axis, -direction, -coef)
            ok_p &= live & (fpp >= 0)
            ok_q &= live & (fqq >= 0)
            half = torch.where(ok_p & ok_q, 0.5, 1.0).to(x.dtype)[:, None, None]
            for owner, ok, g in ((fp_c, ok_p, g_p), (fq_c, ok_q, g_q)):
                g = torch.where(ok[:, None, None], g * half, torch.zeros_like(g)) * (0.5 * s)
                verts = faces[owner]  # [N, 3]
                for k in range(3):
                    flat_grad[:, :2].index_add_(0, verts[:, k], g[:, k])
    return grad_vertices
