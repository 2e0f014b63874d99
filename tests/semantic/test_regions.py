"""Robust-region search on analytic f: the matrix forms against the spec's closed forms and sums, the spec's
oracles (§7.5), a planted box recovered, domain handling, batching and the optim.pt dict."""
import io
import math

import pytest
import torch

from rtool.errors import UsageError
from rtool.semantic import (OptimSettings, box_corners, corner_matrix, naive_step, oir_b_step, oir_w_step, optim_dict,
                            outer_box, robust_regions)

ALPHA, BETA, LAM, ETA = 0.05, 0.0009, 0.1, 0.1
LOW = torch.tensor([100.0, 10.0], dtype=torch.float64)
HIGH = torch.tensor([160.0, 70.0], dtype=torch.float64)


def planted_bump(u, softness=2.0):
    """A smooth box-shaped bump: ~1 inside [100, 160] x [10, 70], ~0 outside."""
    return (torch.sigmoid((u - LOW) / softness) * torch.sigmoid((HIGH - u) / softness)).prod(1)


def skewed(u):
    """An asymmetric smooth f (different along azimuth and elevation)."""
    az, el = u[:, 0], u[:, 1]
    return torch.exp(-((az - 130) / 40) ** 2 - ((el - 35) / 15) ** 2) * (0.8 + 0.2 * torch.sin(az / 17))


def iou(a, b, low=LOW, high=HIGH):
    inter = (torch.minimum(b, high) - torch.maximum(a, low)).clamp(min=0).prod()
    return float(inter / ((b - a).prod() + (high - low).prod() - inter))


# --------------------------------------------------------------------------- matrix forms

def test_corner_order_puts_azimuth_in_the_most_significant_bit():
    assert corner_matrix(2).tolist() == [[0, 0, 1, 1], [0, 1, 0, 1]]
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 5.0])
    assert box_corners(a, b).tolist() == [[1, 2], [1, 5], [3, 2], [3, 5]]
    big_a, big_b = outer_box(a, b, 0.5)
    assert big_a.tolist() == [0.5, 1.25] and big_b.tolist() == [3.5, 5.75]


def test_one_dimensional_steps_match_the_closed_forms():
    gen = torch.Generator().manual_seed(0)
    f_d = torch.rand(2, generator=gen, dtype=torch.float64)
    f_q = torch.rand(2, generator=gen, dtype=torch.float64)
    grad = torch.randn(2, 1, generator=gen, dtype=torch.float64)
    r = torch.tensor([7.0], dtype=torch.float64)
    fa, fb, fA, fB = f_d[0], f_d[1], f_q[0], f_q[1]
    g_a, g_b, _ = naive_step(f_d, r, LAM)
    assert torch.allclose(g_a, fa - LAM * r) and torch.allclose(g_b, -fb + LAM * r)
    g_a, g_b, _ = oir_b_step(f_d, f_q, r, ALPHA)
    assert torch.allclose(g_a, 2 * fa - (1 + ALPHA / 2) * fA - ALPHA / 2 * fB)
    assert torch.allclose(g_b, -2 * fb + (1 + ALPHA / 2) * fB + ALPHA / 2 * fA)
    g_a, g_b, _ = oir_w_step(f_d, f_q, grad, r, ALPHA, BETA)
    assert torch.allclose(g_a, (1 - BETA / 2) * fa - BETA / 2 * fb + BETA * r / 2 * grad[0, 0])
    assert torch.allclose(g_b, -(1 - BETA / 2) * fb + BETA / 2 * fa + BETA * r / 2 * grad[1, 0])


def _oir_w_by_sums(f_d, grad, r, beta):
    """Spec §7.3 written out as the sums it states, one dimension at a time."""
    n = r.numel()
    m = corner_matrix(n)
    mbar = 1 - m
    gamma = 2 - (2 * n - 1) * beta
    volume = r.prod() / 2 ** n
    g_a, g_b = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for k in range(n):
        s_bar = sum(r[i] * sum((mbar[i, j] - m[i, j]) * mbar[k, j] * grad[j, i] for j in range(2 ** n))
                    for i in range(n) if i != k) / r[k]
        s = sum(r[i] * sum((m[i, j] - mbar[i, j]) * m[k, j] * grad[j, i] for j in range(2 ** n))
                for i in range(n) if i != k) / r[k]
        md_bar_f = sum((gamma * mbar[k, j] - beta * m[k, j]) * f_d[j] for j in range(2 ** n))
        md_f = sum((gamma * m[k, j] - beta * mbar[k, j]) * f_d[j] for j in range(2 ** n))
        g_a[k] = volume * (md_bar_f / r[k] + beta * sum(mbar[k, j] * grad[j, k] for j in range(2 ** n)) + beta * s_bar)
        g_b[k] = volume * (-md_f / r[k] + beta * sum(m[k, j] * grad[j, k] for j in range(2 ** n)) + beta * s)
    return g_a, g_b


@pytest.mark.parametrize("n", [2, 3])
def test_oir_w_matrix_form_matches_the_spec_sums(n):
    gen = torch.Generator().manual_seed(n)
    f_d = torch.rand(2 ** n, generator=gen, dtype=torch.float64)
    f_q = torch.rand(2 ** n, generator=gen, dtype=torch.float64)
    grad = torch.randn(2 ** n, n, generator=gen, dtype=torch.float64)
    r = torch.rand(n, generator=gen, dtype=torch.float64) * 10 + 1
    g_a, g_b, loss = oir_w_step(f_d, f_q, grad, r, ALPHA, 0.3)  # a large β so the gradient terms count
    want_a, want_b = _oir_w_by_sums(f_d, grad, r, 0.3)
    assert torch.allclose(g_a, want_a) and torch.allclose(g_b, want_b)
    assert torch.isclose(loss, (1 + ALPHA) ** n * f_q.sum() / f_d.sum() - 1)


def test_two_dimensional_black_box_steps_are_face_trapezoids():
    f_d = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)  # corners (a0,a1) (a0,b1) (b0,a1) (b0,b1)
    r = torch.tensor([4.0, 6.0], dtype=torch.float64)
    g_a, g_b, loss = naive_step(f_d, r, LAM)
    # face a_0 (corners 0, 1) has side r_1: its trapezoid integral r_1 (f0 + f1) / 2
    assert torch.allclose(g_a, torch.tensor([6 * 0.3 / 2, 4 * 0.4 / 2], dtype=torch.float64) - LAM * r)
    assert torch.allclose(g_b, -torch.tensor([6 * 0.7 / 2, 4 * 0.6 / 2], dtype=torch.float64) + LAM * r)
    assert torch.isclose(loss, -6.0 * 1.0 + LAM * r.norm())


# --------------------------------------------------------------------------- oracles (spec §7.5)

@pytest.mark.parametrize("parity", [True, False])
def test_naive_and_oir_b_keep_a_square_start_square(parity):
    settings = OptimSettings(methods=("naive", "OIR_B"), iterations=300, parity=parity)
    result = robust_regions(skewed, [(130, 35), (120, 30)], settings)
    for regions in result.regions.values():
        for region in regions:
            assert region.r[0] > 1  # it grew
            assert torch.isclose(region.r[0], region.r[1], rtol=0, atol=1e-6)
            sides = region.trace[:, 1] - region.trace[:, 0]
            assert torch.allclose(sides[:, 0], sides[:, 1], rtol=0, atol=1e-6)


def constant(value):
    return lambda u: torch.full((u.shape[0],), value, dtype=u.dtype)


def test_constant_f_one_dimensional_naive_converges_to_c_over_lambda():
    result = robust_regions(constant(0.5), [(180.0,)], OptimSettings(methods=("naive",), parity=True), n=1)
    assert math.isclose(float(result.regions["naive"][0].r[0]), 0.5 / LAM, rel_tol=1e-4)


@pytest.mark.parametrize("c", [0.05, 0.3])
def test_constant_f_two_dimensional_naive_grows_only_above_lambda(c):
    settings = OptimSettings(methods=("naive", "OIR_B"), iterations=50, parity=True)
    result = robust_regions(constant(c), [(180.0, 40.0)], settings)
    sides = result.regions["naive"][0].trace[:, 1, 0] - result.regions["naive"][0].trace[:, 0, 0]
    assert torch.allclose(sides[1:] / sides[:-1], torch.tensor(1 + ETA * (2 * c - 2 * LAM), dtype=torch.float64))
    # OIR_B grows for any c > 0, geometrically: Δr = η c (4 - 2 (1 + α)^2) r
    sides = result.regions["OIR_B"][0].trace[:, 1, 0] - result.regions["OIR_B"][0].trace[:, 0, 0]
    assert torch.allclose(sides[1:] / sides[:-1], torch.tensor(1 + ETA * c * (4 - 2 * (1 + ALPHA) ** 2),
                                                               dtype=torch.float64))


def test_constant_f_boxes_leave_the_domain_only_in_parity_mode():
    for parity in (True, False):
        result = robust_regions(constant(1.0), [(180.0, 40.0)], OptimSettings(methods=("OIR_B",), iterations=200,
                                                                              parity=parity))
        region = result.regions["OIR_B"][0]
        if parity:
            assert region.r[0] > 1000
        else:
            assert region.a.tolist() == [0.0, -10.0] and region.b.tolist() == [360.0, 90.0]


def test_default_mode_never_collapses_a_box():
    result = robust_regions(constant(0.0), [(0.0, 89.0), (360.0, -10.0)], OptimSettings(iterations=20))
    for regions in result.regions.values():
        for region in regions:
            assert torch.isfinite(region.trace).all()
            assert (region.r >= OptimSettings().min_width * (1 - 1e-6)).all()
            assert (region.a >= torch.tensor([0.0, -10.0])).all() and (region.b <= torch.tensor([360.0, 90.0])).all()


# --------------------------------------------------------------------------- planted region, gradients, batching

def test_every_method_recovers_a_planted_box_from_inside():
    result = robust_regions(planted_bump, [(130, 40), (115, 25)], OptimSettings())
    for method, regions in result.regions.items():
        for region in regions:
            assert iou(region.a, region.b) >= 0.5, (method, region.a, region.b)


def test_parity_flips_the_white_box_gradient():
    """One OIR_W step equals the closed form with G = +df/du (default) or G = -df/du (parity, a plain f)."""
    start = torch.tensor([[120.0, 30.0]], dtype=torch.float64)
    for parity, sign in ((False, 1.0), (True, -1.0)):
        region = robust_regions(skewed, start, OptimSettings(methods=("OIR_W",), iterations=2, parity=parity,
                                                             start_half_width=2.0)).regions["OIR_W"][0]
        a, b = region.trace[0]
        corners = box_corners(a, b).requires_grad_(True)
        (grad,) = torch.autograd.grad(skewed(corners).sum(), corners)
        f_d = skewed(corners).detach()
        q_a, q_b = outer_box(a, b, ALPHA)
        g_a, g_b, _ = oir_w_step(f_d, skewed(box_corners(q_a, q_b)), sign * grad, b - a, ALPHA, BETA)
        assert torch.allclose(region.trace[1, 0], a - ETA * g_a) and torch.allclose(region.trace[1, 1], b - ETA * g_b)


def test_finite_difference_gradient_agrees_with_autograd():
    runs = [robust_regions(skewed, [(120, 30)], OptimSettings(methods=("OIR_W",), iterations=100, beta=0.3,
                                                              gradient=g, fd_step=1e-3)).regions["OIR_W"][0]
            for g in ("autograd", "fd")]
    assert torch.allclose(runs[0].trace, runs[1].trace, atol=1e-5)


def test_one_call_of_f_per_iteration_covers_every_corner():
    calls = []

    def counted(u):
        calls.append(u.shape)
        return planted_bump(u)

    robust_regions(counted, None, OptimSettings(iterations=5))
    # 4 points x 3 methods x 4 corners of D, plus 4 points x 2 methods (OIR_B, OIR_W) x 4 corners of Q
    assert calls == [torch.Size([4 * 3 * 4 + 4 * 2 * 4, 2])] * 5


class ChunkedBump:
    """planted_bump as an objective that asks for its gradient rows in chunks (as ViewScore does)."""

    def __init__(self, grad_batch_size):
        self.grad_batch_size = grad_batch_size
        self.calls = []

    def __call__(self, u):
        self.calls.append((u.shape[0], torch.is_grad_enabled() and u.requires_grad))
        return planted_bump(u)


@pytest.mark.parametrize("parity", [False, True])
def test_grad_rows_go_in_chunks_with_the_objectives_grad_batch_size(parity):
    settings = OptimSettings(iterations=3, parity=parity)
    chunked = ChunkedBump(grad_batch_size=3)
    got = robust_regions(chunked, None, settings)
    want = robust_regions(planted_bump, None, settings)
    # OIR_W's 4 points x 4 corners with gradients in chunks of 3; the other 64 rows in one call without a graph
    assert chunked.calls == ([(3, True)] * 5 + [(1, True), (64, False)]) * 3
    for method in settings.methods:
        for region, reference in zip(got.regions[method], want.regions[method]):
            torch.testing.assert_close(region.trace, reference.trace, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(region.loss, reference.loss, rtol=1e-12, atol=1e-12)


def test_one_dimensional_defaults_run_all_methods():
    f = lambda u: torch.exp(-((u[:, 0] - 130) / 30) ** 2)  # noqa: E731
    result = robust_regions(f, None, OptimSettings(iterations=200), n=1)
    assert result.start_points.shape == (4, 1)
    box = result.regions["OIR_B"][0]
    assert box.a.shape == (1,) and box.a < 130 < box.b


def test_optim_dict_loads_with_weights_only():
    result = robust_regions(planted_bump, [(130, 40)], OptimSettings(iterations=4))
    buffer = io.BytesIO()
    torch.save(optim_dict(result, 1, "resnet50", "b08727e6"), buffer)
    buffer.seek(0)
    record = torch.load(buffer, weights_only=True)
    assert record["initial_point"] == [[130.0, 40.0]] and record["network_name"] == "resnet50"
    assert set(record) >= {"naive", "OIR_B", "OIR_W", "class_nb", "shape_id"}
    assert record["OIR_B"]["optim_trace"][0].shape == (4, 2, 2)
    assert record["OIR_B"]["loss_trace"][0].shape == (4,)
    assert torch.equal(record["OIR_B"]["regions"][0]["a"], result.regions["OIR_B"][0].a)


@pytest.mark.parametrize("points, message", [
    ([(400.0, 20.0)], "outside the domain"),
    ([(100.0, -20.0)], "outside the domain"),
    ([(100.0,)], "expected 2 value"),
    ([], "no start point"),
])
def test_bad_start_points_are_usage_errors(points, message):
    with pytest.raises(UsageError, match=message):
        robust_regions(planted_bump, points, OptimSettings(iterations=1), n=2)


@pytest.mark.parametrize("options, message", [
    ({"methods": ("OIR_X",)}, "method 'OIR_X' is unknown"),
    ({"methods": ()}, "no methods"),
    ({"gradient": "exact"}, "gradient 'exact'"),
    ({"iterations": 0}, "iterations=0"),
    ({"eta": -1.0}, "eta=-1.0"),
])
def test_bad_settings_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        OptimSettings(**options)
