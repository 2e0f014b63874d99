"""Robust-region search over viewpoints (spec §6-§7): grow an axis-aligned box D = [a, b] around a start
point in which f stays high, by naive, OIR_B (outer-inner, black-box) or OIR_W (outer-inner, white-box).

The update rules are the original code's matrix forms. Every corner of every start point and method (and the
outer box Q where a method needs it) is evaluated in ONE call of f per iteration, except for an objective
with a `grad_batch_size` (ViewScore): it gets OIR_W's gradient rows in chunks of that size, forward and
backward per chunk, and the other rows in one call without a graph.

`parity` keeps the original's behaviour: OIR_W's gradient G is d/du CrossEntropy(softmax p, z), almost the
NEGATIVE of df/du, and the domain clipping is a no-op, so boxes may leave Ω, collapse or reach NaN. The
default clips a and b to Ω, keeps every box at least `min_width` wide, and uses G = +df/du as the paper's
formulas assume.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from rtool.errors import UsageError
from rtool.semantic.space import check_points, domain

METHODS = ("OIR_W", "naive", "OIR_B")      # the original's order of runs per start point
GRADIENTS = ("autograd", "fd")             # how OIR_W gets df/du
START_POINTS_2D = ((130.0, 30.0), (50.0, 20.0), (200.0, 15.0), (310.0, 50.0))
START_POINTS_1D = tuple((point[0],) for point in START_POINTS_2D)  # the same azimuths at the fixed elevation

Objective = Callable[[torch.Tensor], torch.Tensor]  # u [N, n] degrees -> f(u) [N], differentiable in u


@dataclass(frozen=True)
class OptimSettings:
    """Hyper-parameters of one robust-region search (spec §7 defaults)."""

    methods: tuple[str, ...] = METHODS
    eta: float = 0.1               # step size η (plain gradient descent)
    alpha: float = 0.05            # outer band: Q's side is (1 + α) r
    beta: float = 0.0009           # OIR_W's β
    lam: float = 0.1               # naive's λ, the weight of ||r||
    iterations: int = 800          # T; no early stop
    parity: bool = False           # the original's gradient sign and its no-op domain clipping
    gradient: str = "autograd"     # OIR_W's df/du: autograd through f, or central finite differences
    fd_step: float = 1.0           # degrees, for gradient="fd"
    start_half_width: float = 1e-5  # the start box is u0 ± this
    min_width: float = 2e-5        # default mode: a box never gets narrower than this (no r = 0, no NaN)

    def __post_init__(self):
        if not self.methods:
            raise UsageError("no methods given: expected some of " + ", ".join(METHODS))
        for method in self.methods:
            if method not in METHODS:
                raise UsageError(f"method {method!r} is unknown; expected one of {', '.join(METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise UsageError(f"methods {self.methods!r}: each method once")
        if self.gradient not in GRADIENTS:
            raise UsageError(f"gradient {self.gradient!r} is unknown; expected one of {', '.join(GRADIENTS)}")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise UsageError(f"iterations={self.iterations!r}: expected a positive integer")
        for name in ("eta", "alpha", "fd_step", "start_half_width", "min_width"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name}={getattr(self, name)!r}: expected a positive number")
        for name in ("beta", "lam"):
            if not getattr(self, name) >= 0:
                raise UsageError(f"{name}={getattr(self, name)!r}: expected a non-negative number")


@dataclass(frozen=True)
class Region:
    """One run: a start point, a method, the final box [a, b] and its history (state before each update)."""

    method: str
    start: torch.Tensor   # [n]
    a: torch.Tensor       # [n] final lower corner
    b: torch.Tensor       # [n] final upper corner
    trace: torch.Tensor   # [T, 2, n]: (a, b) before update t
    loss: torch.Tensor    # [T]

    @property
    def r(self) -> torch.Tensor:
        return self.b - self.a


@dataclass(frozen=True)
class OptimResult:
    start_points: torch.Tensor                     # [P, n]
    regions: dict[str, list[Region]] = field(default_factory=dict)  # method -> one region per start point


# ------------------------------------------------------------------------------------------- matrices

def corner_matrix(n: int, dtype=torch.float64) -> torch.Tensor:
    """M [n, 2^n]: column k is the n-bit binary of k, most significant bit = dimension 0 (azimuth)."""
    k = torch.arange(2 ** n)
    return torch.stack([(k >> (n - 1 - i)) & 1 for i in range(n)]).to(dtype)


def box_corners(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., 2^n, n]: corner k = a + m_k ⊙ (b - a)."""
    m = corner_matrix(a.shape[-1], a.dtype).to(a.device)
    return a[..., None, :] + m.T * (b - a)[..., None, :]


def outer_box(a: torch.Tensor, b: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Q = [a - (α/2) r, b + (α/2) r]."""
    r = b - a
    return a - 0.5 * alpha * r, b + 0.5 * alpha * r


def _volume(r: torch.Tensor) -> torch.Tensor:
    """△ = prod(r) / 2^n, the normalised volume."""
    return r.prod(-1) / 2 ** r.shape[-1]


def naive_step(f_d: torch.Tensor, r: torch.Tensor, lam: float):
    """(g_a, g_b, loss) of the naive method (§7.1); f_d [..., 2^n], r [..., n]."""
    m = corner_matrix(r.shape[-1], r.dtype).to(r.device)
    scale = 2 * _volume(r)[..., None] / r
    g_a = scale * (f_d @ (1 - m).T) - lam * r
    g_b = -scale * (f_d @ m.T) + lam * r
    loss = -_volume(r) * f_d.sum(-1) + lam * r.norm(dim=-1)
    return g_a, g_b, loss


def oir_b_step(f_d: torch.Tensor, f_q: torch.Tensor, r: torch.Tensor, alpha: float):
    """(g_a, g_b, loss) of OIR_B (§7.2): loss = ∫_Q f - 2 ∫_D f by corner trapezoids."""
    n = r.shape[-1]
    m = corner_matrix(n, r.dtype).to(r.device)
    mbar = 1 - m
    grow = (1 + alpha) ** (n - 1)
    mq_bar = grow * ((1 + alpha / 2) * mbar + (alpha / 2) * m)
    mq = grow * ((1 + alpha / 2) * m + (alpha / 2) * mbar)
    scale = 2 * _volume(r)[..., None] / r
    g_a = scale * (2 * (f_d @ mbar.T) - f_q @ mq_bar.T)
    g_b = scale * (-2 * (f_d @ m.T) + f_q @ mq.T)
    loss = _volume(r) * ((1 + alpha) ** n * f_q.sum(-1) - 2 * f_d.sum(-1))
    return g_a, g_b, loss


def oir_w_step(f_d: torch.Tensor, f_q: torch.Tensor, grad: torch.Tensor, r: torch.Tensor, alpha: float, beta: float):
    """(g_a, g_b, loss) of OIR_W (§7.3); grad [..., 2^n, n] is G at D's corners (row corner, column dimension)."""
    n = r.shape[-1]
    m = corner_matrix(n, r.dtype).to(r.device)
    mbar = 1 - m
    gamma = 2 - (2 * n - 1) * beta
    md_bar = gamma * mbar - beta * m
    md = gamma * m - beta * mbar
    others = 1 - torch.eye(n, dtype=r.dtype, device=r.device)  # i ≠ k
    # t[k, i] = Σ_j (±)[i, j] * selector[k, j] * G[j, i]; s_k = (1 / r_k) Σ_{i≠k} r_i t[k, i]
    t_bar = torch.einsum("ij,kj,...ji->...ki", mbar - m, mbar, grad)
    t = torch.einsum("ij,kj,...ji->...ki", m - mbar, m, grad)
    s_bar = (t_bar * others * r[..., None, :]).sum(-1) / r
    s = (t * others * r[..., None, :]).sum(-1) / r
    diag_bar = torch.einsum("kj,...jk->...k", mbar, grad)
    diag = torch.einsum("kj,...jk->...k", m, grad)
    volume = _volume(r)[..., None]
    g_a = volume * ((f_d @ md_bar.T) / r + beta * diag_bar + beta * s_bar)
    g_b = volume * (-(f_d @ md.T) / r + beta * diag + beta * s)
    loss = (1 + alpha) ** n * f_q.sum(-1) / f_d.sum(-1) - 1
    return g_a, g_b, loss


# ------------------------------------------------------------------------------------------- evaluation

def _parity_target(f: Objective, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(f(u), per-row quantity whose u-gradient is the original's G).

    With a classifier objective (one with `probabilities` and `true_class`), G = d/du CE(p, z) where p is
    already the softmax vector, as in the original. A plain f has no class vector: G = -df/du stands in
    (the original's G is about -0.997 df/du)."""
    if hasattr(f, "probabilities") and hasattr(f, "true_class"):
        p = f.probabilities(u)
        labels = torch.full((p.shape[0],), int(f.true_class), dtype=torch.long, device=p.device)
        return p[:, f.true_class], F.cross_entropy(p, labels, reduction="none")
    values = f(u)
    return values, -values


def _evaluate_with_grad(f: Objective, points: torch.Tensor, grad_rows: int | None, settings: OptimSettings):
    """(f at `points` [N, n], G at the first `grad_rows` of them (None: all)) from one call of f with a graph."""
    u = points.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        if settings.parity:
            values, target = _parity_target(f, u)
        else:
            values = f(u)
            target = values
        if target.requires_grad:
            (grad,) = torch.autograd.grad(target[:grad_rows].sum(), u, allow_unused=True, materialize_grads=True)
        else:  # f does not depend on u (a constant)
            grad = torch.zeros_like(u)
    return values.detach().to(torch.float64).reshape(-1), grad[:grad_rows].to(torch.float64)


def _evaluate(f: Objective, points: torch.Tensor, grad_rows: int, settings: OptimSettings):
    """f at `points` [N, n] (in one call unless f has a `grad_batch_size`); G [grad_rows, n] at the first
    `grad_rows` points (0: none)."""
    n = points.shape[1]
    if grad_rows == 0:
        with torch.no_grad():
            return f(points).to(torch.float64).reshape(-1), None
    if settings.gradient == "fd":
        h = settings.fd_step
        steps = h * torch.eye(n, dtype=points.dtype, device=points.device)
        base = points[:grad_rows]
        shifted = torch.cat([(base[:, None, :] + sign * steps).reshape(-1, n) for sign in (1.0, -1.0)])
        with torch.no_grad():
            values = f(torch.cat([points, shifted])).to(torch.float64).reshape(-1)
        count = points.shape[0]
        plus, minus = values[count:].reshape(2, grad_rows, n)
        grad = (plus - minus) / (2 * h)
        return values[:count], (-grad if settings.parity else grad)
    # An objective with `grad_batch_size` (ViewScore) takes the gradient rows through forward and backward
    # chunk by chunk, each chunk's graph freed before the next, and the other rows in one call without a
    # graph; any other f gets all rows in one call.
    chunk = getattr(f, "grad_batch_size", None)
    if chunk is None:
        return _evaluate_with_grad(f, points, grad_rows, settings)
    values, grads = [], []
    for start in range(0, grad_rows, chunk):
        part, grad = _evaluate_with_grad(f, points[start:min(start + chunk, grad_rows)], None, settings)
        values.append(part)
        grads.append(grad)
    if grad_rows < points.shape[0]:
        with torch.no_grad():
            values.append(f(points[grad_rows:]).to(torch.float64).reshape(-1))
    return torch.cat(values), torch.cat(grads)


# ------------------------------------------------------------------------------------------- search

def _keep_in_domain(a, b, low, high, min_width):
    """Clip [a, b] to Ω and widen boxes narrower than `min_width` about their centre (inside Ω)."""
    a, b = torch.maximum(a, low), torch.minimum(b, high)
    b = torch.maximum(b, a)  # a box pushed wholly outside collapses onto the boundary
    narrow = (b - a) < min_width
    centre = (a + b) / 2
    a = torch.where(narrow, centre - min_width / 2, a)
    b = torch.where(narrow, centre + min_width / 2, b)
    below, above = (low - a).clamp(min=0), (b - high).clamp(min=0)
    return a + below - above, b + below - above


def robust_regions(f: Objective, start_points: Sequence[Sequence[float]] | torch.Tensor | None = None,
                   settings: OptimSettings = OptimSettings(), *, n: int | None = None) -> OptimResult:
    """Grow a robust region around every start point with every method of `settings`.

    `f` maps u [N, n] (degrees; n = 1: azimuth, n = 2: azimuth, elevation) to f(u) [N] and must be
    differentiable in u for OIR_W with gradient="autograd". `start_points` [P, n]: default the spec's four
    (azimuths only when n = 1). Returns the final boxes with their traces.
    """
    if start_points is None:
        start_points = START_POINTS_1D if n == 1 else START_POINTS_2D
    if isinstance(start_points, torch.Tensor):
        start_points = start_points.tolist()
    points = check_points(start_points, n if n is not None else len(start_points[0]))
    dims = points.shape[1]
    low, high = domain(dims)
    methods = settings.methods
    corners = 2 ** dims
    count = len(methods) * points.shape[0]
    # State [methods, P, n], float64 whatever f computes in.
    a = (points - settings.start_half_width).expand(len(methods), -1, -1).clone()
    b = (points + settings.start_half_width).expand(len(methods), -1, -1).clone()
    outer = [k for k, m in enumerate(methods) if m in ("OIR_B", "OIR_W")]
    w_index = methods.index("OIR_W") if "OIR_W" in methods else None
    traces = torch.empty(settings.iterations, len(methods), points.shape[0], 2, dims, dtype=torch.float64)
    losses = torch.empty(settings.iterations, len(methods), points.shape[0], dtype=torch.float64)

    for step in range(settings.iterations):
        d_corners = box_corners(a, b)                           # [methods, P, K, n]
        q_a, q_b = outer_box(a[outer], b[outer], settings.alpha)
        q_corners = box_corners(q_a, q_b)                       # [outer methods, P, K, n]
        # OIR_W's corners go first so that its gradient rows are a prefix of the batch.
        order = ([w_index] if w_index is not None else []) + [k for k in range(len(methods)) if k != w_index]
        batch = torch.cat([d_corners[order].reshape(-1, dims), q_corners.reshape(-1, dims)])
        grad_rows = points.shape[0] * corners if w_index is not None else 0
        values, grad = _evaluate(f, batch.to(points.device), grad_rows, settings)
        f_d = torch.empty(len(methods), points.shape[0], corners, dtype=torch.float64)
        f_d[order] = values[:count * corners].reshape(len(methods), points.shape[0], corners)
        f_q = values[count * corners:].reshape(len(outer), points.shape[0], corners)

        traces[step, :, :, 0], traces[step, :, :, 1] = a, b
        r = b - a
        g_a, g_b = torch.empty_like(a), torch.empty_like(b)
        for k, method in enumerate(methods):
            if method == "naive":
                ga, gb, loss = naive_step(f_d[k], r[k], settings.lam)
            elif method == "OIR_B":
                ga, gb, loss = oir_b_step(f_d[k], f_q[outer.index(k)], r[k], settings.alpha)
            else:
                g = grad.reshape(points.shape[0], corners, dims)
                ga, gb, loss = oir_w_step(f_d[k], f_q[outer.index(k)], g, r[k], settings.alpha, settings.beta)
            g_a[k], g_b[k], losses[step, k] = ga, gb, loss
        a = a - settings.eta * g_a
        b = b - settings.eta * g_b
        if not settings.parity:
            a, b = _keep_in_domain(a, b, low, high, settings.min_width)

    regions = {method: [Region(method, points[p], a[k, p], b[k, p], traces[:, k, p], losses[:, k, p])
                        for p in range(points.shape[0])] for k, method in enumerate(methods)}
    return OptimResult(points, regions)


def optim_dict(result: OptimResult, class_nb: int, network_name: str, shape_id: str | None = None) -> dict:
    """The spec §7.5b `optim.pt` dict, regions as plain tensors (loadable with weights_only=True):
    {initial_point, class_nb, network_name, shape_id, <method>: {optim_trace, loss_trace, regions}}."""
    record: dict = {"initial_point": result.start_points.tolist(), "class_nb": int(class_nb),
                    "network_name": str(network_name)}
    if shape_id is not None:
        record["shape_id"] = str(shape_id)
    for method, regions in result.regions.items():
        record[method] = {
            "optim_trace": [region.trace.clone() for region in regions],   # per point [T, 2, n]: (a, b)
            "loss_trace": [region.loss.clone() for region in regions],     # per point [T]
            "regions": [{"a": region.a.clone(), "b": region.b.clone(), "r": region.r.clone()} for region in regions],
        }
    return record
