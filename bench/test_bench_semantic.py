"""`rtool semantic` with resnet18 (random init: the weights do not change the cost) on the procedural chair.

Two groups, each read off one run:
- "map": a semantic map over a sub-grid of the spec's (RTOOL_BENCH_MAP_VIEWS views, default 240: azimuth step
  18 x elevation step 9 on the 224² renders at 2x supersampling), rendered and classified in batches of 32 by
  `semantic_map`; the same views rendered only and classified only (the split); and a port of the original's
  loop, one view rendered and classified at a time (its cost is linear in views, so it runs on a subset).
  `extra_info["per_view_ms"]` holds each entry's time per view.
- "oir_w": one OIR_W iteration for the spec's four start points: rtool evaluates the 4 inner corners (with
  df/du) and the 4 outer corners of every start point in one batch; the original walks them corner by
  corner (one render + forward + backward per inner corner, one render + forward per outer corner).
The anchor (the original's neural_renderer) does not build here; the loops stand in for its call pattern.
"""
import os

import pytest
import torch

from rtool.models import build_model
from rtool.render import procedural_mesh
from rtool.semantic import (START_POINTS_2D, MapSettings, OptimSettings, ViewPreprocess, ViewScore, box_corners,
                            outer_box, robust_regions, semantic_map)

MAP_VIEWS = int(os.environ.get("RTOOL_BENCH_MAP_VIEWS", "240"))
LOOP_VIEWS = 24
BATCH = 32


@pytest.fixture(scope="module")
def objective():
    torch.manual_seed(0)
    model = build_model("resnet18").eval()
    return ViewScore(model, procedural_mesh("chair"), 559, ViewPreprocess.for_model("resnet18"), batch_size=BATCH)


def _grid(views: int) -> MapSettings:
    # 12 elevations (-10..89 step 9) x azimuths enough for `views`
    return MapSettings(azimuth_step=max(3.0, 360.0 / max(views // 12, 1)), elevation_step=9.0, views_per_batch=BATCH)


def _views(settings: MapSettings) -> torch.Tensor:
    azimuths, elevations = settings.axes()
    yy, xx = torch.meshgrid(elevations, azimuths, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)


@pytest.mark.benchmark(group="map")
def test_map_batched(benchmark, objective):
    settings = _grid(MAP_VIEWS)
    heat = benchmark.pedantic(semantic_map, args=(objective, settings), rounds=1, iterations=1)
    benchmark.extra_info["views"] = heat.scores.numel()
    benchmark.extra_info["per_view_ms"] = benchmark.stats.stats.mean * 1e3 / heat.scores.numel()


@pytest.mark.benchmark(group="map")
def test_map_render_only(benchmark, objective):
    u = _views(_grid(MAP_VIEWS))
    renderer = objective.renderer

    def render_all():
        with torch.no_grad():
            for k in range(0, len(u), BATCH):
                renderer.render(objective.mesh, u[k:k + BATCH, 0].float(), u[k:k + BATCH, 1].float())

    benchmark.pedantic(render_all, rounds=1, iterations=1)
    benchmark.extra_info["per_view_ms"] = benchmark.stats.stats.mean * 1e3 / len(u)


@pytest.mark.benchmark(group="map")
def test_map_classify_only(benchmark, objective):
    u = _views(_grid(MAP_VIEWS))
    with torch.no_grad():
        images = objective.renderer.render(objective.mesh, u[:BATCH, 0].float(), u[:BATCH, 1].float())
        batch = objective.preprocess(images)

    def classify_all():
        with torch.no_grad():
            for _ in range(0, len(u), BATCH):
                objective.model(batch)

    benchmark.pedantic(classify_all, rounds=1, iterations=1)
    benchmark.extra_info["per_view_ms"] = benchmark.stats.stats.mean * 1e3 / len(u)


@pytest.mark.benchmark(group="map")
def test_map_one_view_at_a_time(benchmark, objective):
    u = _views(_grid(MAP_VIEWS))[:LOOP_VIEWS]

    def loop():
        with torch.no_grad():
            return [float(objective(u[i:i + 1])[0]) for i in range(len(u))]

    values = benchmark.pedantic(loop, rounds=1, iterations=1)
    with torch.no_grad():
        batched = objective(u)
    assert torch.allclose(torch.tensor(values, dtype=torch.float64), batched.double(), atol=1e-4)
    benchmark.extra_info["per_view_ms"] = benchmark.stats.stats.mean * 1e3 / len(u)


@pytest.mark.benchmark(group="oir_w")
def test_oir_w_iteration_batched(benchmark, objective):
    settings = OptimSettings(methods=("OIR_W",), iterations=1)
    benchmark.pedantic(robust_regions, args=(objective, START_POINTS_2D, settings), rounds=1, iterations=1)


@pytest.mark.benchmark(group="oir_w")
def test_oir_w_iteration_corner_by_corner(benchmark, objective):
    points = torch.tensor(START_POINTS_2D, dtype=torch.float64)
    a, b = points - 1e-5, points + 1e-5

    def walk():
        inner = box_corners(a, b).reshape(-1, 2)
        q_a, q_b = outer_box(a, b, 0.05)
        for u in inner:
            view = u[None].clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(view).sum(), view)
        with torch.no_grad():
            for u in box_corners(q_a, q_b).reshape(-1, 2):
                objective(u[None])

    benchmark.pedantic(walk, rounds=1, iterations=1)
