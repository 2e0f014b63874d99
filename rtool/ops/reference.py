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
# Mesh rasterizer (rtool.ops.rasterize / rasterize_image / rasterize_backward): dense references, every pixel
# against every face, the same arithmetic as csrc/raster/raster_math.h.


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


def rasterize_image_ref(vertices, faces, colors, image_size, supersample=1, near=0.1, far=100.0,
                        cull_backfaces=True):
    """Reference for rtool.ops.rasterize_image: the dense image at image_size * supersample, average-pooled."""
    image = rasterize_ref(vertices, faces, colors, image_size * supersample, near, far, cull_backfaces)[0]
    return torch.nn.functional.avg_pool2d(image, supersample) if supersample > 1 else image


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


# Corruption kernels (rtool noc): one image at a time, plain PyTorch (the 8-bit PIL-path branches call PIL
# itself, which is the operation they reproduce).
# ---------------------------------------------------------------------------------------------------------

_DISC_HALF_WIDTHS = (6, 6, 5, 5, 4, 3, 1)


def _stamp_pixels(kind: int, r0: int, c0: int, h: int, w: int, sr: int, sc: int) -> list[tuple[int, int]]:
    if kind == 1:
        return [(r0 + i * sr, c0 + j * sc) for i in range(h) for j in range(w)]
    if kind == 2:
        return [(r0 + i, c0 + k) for i in range(-6, 7) for k in range(-(7 - abs(i)), 7 - abs(i))]
    if kind in (3, 4):
        return [(r0 + i, c0 + k) for i in range(-6, 7)
                for k in range(-_DISC_HALF_WIDTHS[abs(i)], _DISC_HALF_WIDTHS[abs(i)] + 1)]
    return []


def corrupt_stamp_ref(images: torch.Tensor, stamps: torch.Tensor, fills: torch.Tensor) -> torch.Tensor:
    """Reference for rtool.ops.corrupt_stamp: a Python loop over the stamps of each image."""
    out = images.clone().contiguous()
    H, W = images.shape[-2:]
    for b in range(images.shape[0]):
        for stamp, fill in zip(stamps[b].tolist(), fills[b].to(images.dtype)):
            pixels = [(y, x) for y, x in _stamp_pixels(*stamp) if 0 <= y < H and 0 <= x < W]
            if not pixels:
                continue
            ys = torch.tensor([p[0] for p in pixels], device=images.device)
            xs = torch.tensor([p[1] for p in pixels], device=images.device)
            if stamp[0] == 4:
                out[b, :, ys, xs] = 0.5 * out[b, :, ys, xs] + 0.5 * fill
            else:
                out[b, :, ys, xs] = fill
    return out


_MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    # The same hash as mix32 in csrc/corrupt/corrupt_math.h, in int64 (the multipliers are below 2^31).
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x5BD1E995) & _MASK32
    return x ^ (x >> 16)


def noise_uniform_ref(key: int, counters: torch.Tensor) -> torch.Tensor:
    """The kernels' uniform (0, 1) draws (float32, 23 bits) of image key `key` at int64 `counters`."""
    lo, hi = key & _MASK32, (key >> 32) & _MASK32
    bits = _mix32(_mix32(counters ^ lo) ^ hi)
    return ((bits >> 9).float() + 0.5) * (1.0 / 8388608.0)


def corrupt_noise_ref(images: torch.Tensor, keys: torch.Tensor, amounts: torch.Tensor, mode: str) -> torch.Tensor:
    """Reference for rtool.ops.corrupt_noise (Box-Muller in float32, as the kernels)."""
    out = torch.empty_like(images, memory_format=torch.contiguous_format)
    per_image = images[0].numel() if images.shape[0] else 0
    counters = torch.arange(per_image, dtype=torch.int64, device=images.device)
    for b in range(images.shape[0]):
        key, amount = int(keys[b]), float(amounts[b])
        x = images[b].reshape(-1)
        if mode == "gaussian":
            pair = counters // 2  # elements 2k and 2k+1 share one Box-Muller draw: cosine, then sine
            u1 = noise_uniform_ref(key, 2 * pair)
            u2 = noise_uniform_ref(key, 2 * pair + 1)
            r, angle = torch.sqrt(-2.0 * torch.log(u1)), 6.2831853071795865 * u2
            n = torch.where(counters % 2 == 1, r * torch.sin(angle), r * torch.cos(angle)).abs()
            y = (x + (amount * n.double()).to(x.dtype)).clamp(0, 1)
        else:
            u = noise_uniform_ref(key, counters).double()
            y = torch.where(u < amount, torch.zeros_like(x), torch.where(u >= 1.0 - amount, torch.ones_like(x), x))
        out[b] = y.reshape(images.shape[1:])
    return out


def corrupt_box_blur_ref(images: torch.Tensor, weights: torch.Tensor, passes: int = 5) -> torch.Tensor:
    """Reference for rtool.ops.corrupt_box_blur: F.conv2d with a 3x3 box, zero padding, `passes` times."""
    C = images.shape[1]
    kernel = torch.full((C, 1, 3, 3), 1.0 / 9.0, dtype=images.dtype, device=images.device)
    out = []
    for b in range(images.shape[0]):
        x = images[b : b + 1]
        blurred = x
        for _ in range(passes):
            blurred = F.conv2d(blurred, kernel, padding=1, groups=C)
        w = float(weights[b])
        out.append(((1 - w) * x + w * blurred).clamp(0, 1))
    return torch.cat(out) if out else images.clone()


def _to_pil(image: torch.Tensor):
    from PIL import Image

    array = (image.detach().cpu() * 255).to(torch.uint8).permute(1, 2, 0).numpy()  # floor(255 x), as ToPILImage
    return Image.fromarray(array, "RGB")


def _from_pil(image, like: torch.Tensor) -> torch.Tensor:
    import numpy as np

    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return (array.to(like.dtype) / 255).to(like.device)


def corrupt_hue_ref(images: torch.Tensor, shifts: torch.Tensor, pil_exact: bool) -> torch.Tensor:
    """Reference for rtool.ops.corrupt_hue: PIL's HSV conversion with the H band shifted modulo 256
    (pil_exact), or torchvision's tensor adjust_hue."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    out = []
    for b in range(images.shape[0]):
        shift = float(shifts[b])
        if pil_exact:
            h, s, v = _to_pil(images[b]).convert("HSV").split()
            offset = int(shift * 255) % 256
            h = Image.fromarray(((np.asarray(h, dtype=np.int32) + offset) % 256).astype(np.uint8), "L")
            out.append(_from_pil(Image.merge("HSV", (h, s, v)).convert("RGB"), images))
        else:
            out.append(TF.adjust_hue(images[b], shift))
    return torch.stack(out) if out else images.clone()


def _pil_affine_indices(matrix: list[float], H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    # PIL (libImaging/Geometry.c) has three paths that round differently at pixel boundaries: a pure
    # scale/translation accumulates doubles; otherwise 16.16 fixed point when the corners fit; otherwise
    # doubles accumulated along rows. Replay them (np.cumsum adds sequentially, as PIL's loops do).
    import math

    import numpy as np

    a, b, c, d, e, f = matrix

    def coord(v):
        return np.where(v < 0, -1, np.trunc(v)).astype(np.int64)

    def fits(x, y):
        return abs(x * a + y * b + c) < 32768.0 and abs(x * d + y * e + f) < 32768.0

    if b == 0 and d == 0:
        xs = coord(np.cumsum(np.array([c + a * 0.5] + [a] * (W - 1))))
        ys = coord(np.cumsum(np.array([f + e * 0.5] + [e] * (H - 1))))
        xi, yi = np.broadcast_to(xs[None, :], (H, W)), np.broadcast_to(ys[:, None], (H, W))
    elif fits(0, 0) and fits(W, H) and fits(0, H) and fits(W, 0):
        def fix(v):
            v = v * 65536.0 + 0.5
            return int(math.floor(v)) if v < 0 else int(v)

        a0, a1, a3, a4 = fix(a), fix(b), fix(d), fix(e)
        a2, a5 = fix(c + a * 0.5 + b * 0.5), fix(f + d * 0.5 + e * 0.5)
        y, x = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        xi = (a2 + y * a1 + x * a0) >> 16
        yi = (a5 + y * a4 + x * a3) >> 16
    else:
        xo = np.cumsum(np.array([c + b * 0.5 + a * 0.5] + [b] * (H - 1)))
        yo = np.cumsum(np.array([f + e * 0.5 + d * 0.5] + [e] * (H - 1)))
        xs, ys = np.empty((H, W)), np.empty((H, W))
        for row in range(H):
            xs[row] = np.cumsum(np.array([xo[row]] + [a] * (W - 1)))
            ys[row] = np.cumsum(np.array([yo[row]] + [d] * (W - 1)))
        xi, yi = coord(xs), coord(ys)
    return torch.from_numpy(np.ascontiguousarray(yi)), torch.from_numpy(np.ascontiguousarray(xi))


def corrupt_affine_ref(images: torch.Tensor, matrices: torch.Tensor, quantize: bool) -> torch.Tensor:
    """Reference for rtool.ops.corrupt_affine: PIL's source-coordinate sums, then a gather."""
    B, C, H, W = images.shape
    out = torch.zeros_like(images, memory_format=torch.contiguous_format)
    for b in range(B):
        yi, xi = _pil_affine_indices([float(v) for v in matrices[b]], H, W)
        yi, xi = yi.to(images.device), xi.to(images.device)
        inside = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
        src = images[b]
        if quantize:
            src = (src * 255).to(torch.uint8).to(images.dtype) / 255
        out[b][:, inside] = src[:, yi[inside], xi[inside]]
    return out


def _pixelate_one(x: torch.Tensor, k: int) -> torch.Tensor:
    H, W = x.shape[-2:]
    small = F.avg_pool2d(x[None], kernel_size=k, stride=k)
    big = F.interpolate(small, scale_factor=k, mode="nearest")[0]
    dh, dw = H - big.shape[-2], W - big.shape[-1]
    if dh or dw:
        big = F.pad(big[None], (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="reflect")[0]
    return big


def _resize_float(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def corrupt_resample_ref(images: torch.Tensor, params: torch.Tensor, mode: str, quantize: bool = False) -> torch.Tensor:
    """Reference for rtool.ops.corrupt_resample: avg_pool2d + nearest upsampling + reflect pad (pixelate);
    PIL's Image.resize(BILINEAR) on the 8-bit image (quantize) or F.interpolate(antialias=True)."""
    from PIL import Image

    H, W = images.shape[-2:]
    out = []
    for b in range(images.shape[0]):
        x = images[b]
        q = [int(v) for v in params[b]]
        if mode == "pixelate":
            out.append(_pixelate_one(x, q[0]))
            continue
        if mode == "thumbnail":
            h, w = q
            if quantize:
                pil = _to_pil(x).resize((w, h), Image.BILINEAR).resize((W, H), Image.BILINEAR)
                out.append(_from_pil(pil, x))
            else:
                out.append(_resize_float(_resize_float(x, (h, w)), (H, W)))
            continue
        axis, cut = q
        if quantize:
            pil = _to_pil(x)
            box = (0, cut, W, H) if axis == 0 else (cut, 0, W, H)
            out.append(_from_pil(pil.crop(box).resize((W, H), Image.BILINEAR), x))
        else:
            crop = x[:, cut:, :] if axis == 0 else x[:, :, cut:]
            out.append(_resize_float(crop, (H, W)))
    return torch.stack(out) if out else images.clone()


# dsa: per-class k nearest reference rows (surprise adequacy)
# ---------------------------------------------------------------------------------------------------------


def dsa_knn_ref(
    queries: torch.Tensor,
    refs: torch.Tensor,
    class_offsets: torch.Tensor,
    k: int = 1,
    self_index: torch.Tensor | None = None,
    chunk: int = 2048,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference for rtool.ops.dsa_knn: direct float64 differences, a stable sort per class block.

    `chunk` bounds the queries handled at once (the [chunk, N, D] difference tensor is the memory cost).
    """
    num_queries, num_classes = queries.shape[0], class_offsets.numel() - 1
    offsets = [int(v) for v in class_offsets.tolist()]
    q64, r64 = queries.double(), refs.double()
    distances = torch.full((num_queries, num_classes, k), float("inf"), dtype=torch.float64, device=queries.device)
    indices = torch.full((num_queries, num_classes, k), -1, dtype=torch.long, device=queries.device)
    rows = torch.arange(refs.shape[0], device=queries.device)
    step = max(1, int(chunk))
    for q0 in range(0, num_queries, step):
        q = q64[q0:q0 + step]
        squared = ((q[:, None, :] - r64[None, :, :]) ** 2).sum(-1)  # [q, N]
        if self_index is not None:
            skip = self_index[q0:q0 + step]
            squared = torch.where(rows[None, :] == skip[:, None], torch.inf, squared)
        for c in range(num_classes):
            lo, hi = offsets[c], offsets[c + 1]
            block = squared[:, lo:hi]
            order = torch.sort(block, dim=1, stable=True).indices[:, :k]
            taken = torch.gather(block, 1, order)
            found = torch.isfinite(taken)
            width = order.shape[1]
            distances[q0:q0 + step, c, :width] = torch.where(found, taken.sqrt(), torch.inf)
            indices[q0:q0 + step, c, :width] = torch.where(found, order + lo, -1)
    return distances, indices


# ---------------------------------------------------------------------------------------------------------------------
# DeepFool (rtool.ops.deepfool_step)
# ---------------------------------------------------------------------------------------------------------------------


def deepfool_step_ref(
    logit_diff: torch.Tensor, grad_diff: torch.Tensor, step_eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference for rtool.ops.deepfool_step: norms, ratios with zero norms at +inf, first argmin, step."""
    batch, _, dims = grad_diff.shape
    norms = torch.linalg.vector_norm(grad_diff.double(), dim=2).to(grad_diff.dtype)  # [B, K]
    ratios = logit_diff.abs() / norms
    # Zero norms and NaN ratios are never chosen; torch.argmin returns the first minimum.
    ratios = torch.where((norms > 0) & ~ratios.isnan(), ratios, torch.full_like(ratios, float("inf")))
    if ratios.shape[1] == 0:
        chosen = torch.full((batch,), -1, dtype=torch.long, device=grad_diff.device)
        return grad_diff.new_zeros((batch, dims)), chosen, logit_diff.new_full((batch,), float("inf"))
    best = ratios.argmin(dim=1)
    distance = ratios.gather(1, best[:, None])[:, 0]
    found = distance.isfinite()
    chosen = torch.where(found, best, torch.full_like(best, -1))
    rows = torch.arange(batch, device=grad_diff.device)
    w = grad_diff[rows, best]  # [B, D]
    norm = norms[rows, best]
    scale = torch.where(found, (distance + step_eps) / norm, torch.zeros_like(norm))
    step = torch.where(found[:, None], scale[:, None] * w, torch.zeros_like(w))
    distance = torch.where(found, distance, torch.full_like(distance, float("inf")))
    return step, chosen, distance
