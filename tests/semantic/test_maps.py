"""Semantic maps and f(u) through the renderer: grids, batching, the map.pt dict, preprocessing, gradients."""
import io

import pytest
import torch
from torch import nn

from rtool.errors import UsageError
from rtool.render import procedural_mesh
from rtool.semantic import (MapSettings, OptimSettings, ViewPreprocess, ViewScore, map_dict, map_from_dict,
                            robust_regions, semantic_map)
from rtool.semantic.views import CPU_GRAD_BATCH

TINY = MapSettings(azimuth_step=45, elevation_step=17)  # 8 azimuths x 6 elevations


def analytic(u):
    return torch.sigmoid((u[:, 0] - 180) / 30) * (u[:, 1] + 10) / 100


def tiny_classifier(classes=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, classes)).double().float()


@pytest.fixture(scope="module")
def view_score():
    return ViewScore(tiny_classifier(), procedural_mesh("cup"), 1, ViewPreprocess(32), batch_size=8)


def test_default_grids_are_the_spec_grids():
    azimuths, elevations = MapSettings().axes()
    assert azimuths.numel() == 120 and elevations.numel() == 34
    assert azimuths[[0, -1]].tolist() == [0, 357] and elevations[[0, -1]].tolist() == [-10, 89]
    azimuths, elevations = MapSettings(grid="1d").axes()
    assert azimuths.numel() == 180 and azimuths[-1] == 358 and elevations.tolist() == [35.0]


def test_map_is_f_on_the_grid_in_batches():
    calls = []

    def counted(u):
        calls.append(u.shape[0])
        return analytic(u)

    result = semantic_map(counted, MapSettings(azimuth_step=45, elevation_step=17, views_per_batch=20))
    assert result.scores.shape == (6, 8) and calls == [20, 20, 8]
    xx, yy = result.meshgrid()
    want = analytic(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)).reshape(6, 8).float()
    assert torch.allclose(result.scores, want)
    assert yy[:, 0].tolist() == [-10, 7, 24, 41, 58, 75]


def test_one_dimensional_map_is_one_row_of_azimuths():
    result = semantic_map(lambda u: torch.cos(torch.deg2rad(u[:, 0])) ** 2, MapSettings(grid="1d", azimuth_step=90))
    assert result.scores.shape == (1, 4) and result.azimuths.tolist() == [0, 90, 180, 270]
    assert torch.allclose(result.scores[0], torch.tensor([1.0, 0.0, 1.0, 0.0]), atol=1e-6)


def test_map_dict_loads_with_weights_only_and_round_trips():
    result = semantic_map(analytic, TINY)
    buffer = io.BytesIO()
    torch.save(map_dict(result, 1, "resnet50", "b08727e6"), buffer)
    buffer.seek(0)
    record = torch.load(buffer, weights_only=True)
    assert record["xx"].dtype == torch.int64 and record["z"].dtype == torch.float32
    assert record["xx"].shape == record["yy"].shape == record["z"].shape == (6, 8)
    assert (record["class_nb"], record["network_name"], record["shape_id"]) == (1, "resnet50", "b08727e6")
    again = map_from_dict(record)
    assert torch.equal(again.scores, result.scores) and torch.equal(again.azimuths, result.azimuths)


def test_view_score_renders_and_classifies_in_batches(view_score):
    u = torch.tensor([[0.0, 20.0], [45.0, 30.0], [90.0, -5.0], [200.0, 60.0]], dtype=torch.float64)
    probs = view_score.probabilities(u)
    assert probs.shape == (4, 3) and torch.allclose(probs.sum(1), torch.ones(4))
    single = ViewScore(view_score.model, view_score.mesh, 1, ViewPreprocess(32), batch_size=1)
    assert torch.allclose(single(u), view_score(u), atol=1e-6)
    heat = semantic_map(view_score, TINY)
    assert heat.scores.shape == (6, 8) and 0 <= heat.scores.min() and heat.scores.max() <= 1


def test_view_score_is_differentiable_in_the_angles(view_score):
    u = torch.tensor([[30.0, 20.0], [100.0, 40.0]], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(view_score(u).sum(), u)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_one_dimensional_views_use_the_fixed_elevation(view_score):
    az = torch.tensor([[60.0]], dtype=torch.float64)
    assert torch.allclose(view_score(az), view_score(torch.tensor([[60.0, 35.0]], dtype=torch.float64)))


def test_preprocessing_parity_is_raw_and_proper_normalises():
    assert ViewPreprocess.for_model("resnet18", parity=True) == ViewPreprocess(224)
    proper = ViewPreprocess.for_model("resnet18")
    assert proper.image_size == 224 and proper.mean == pytest.approx((0.485, 0.456, 0.406))
    assert ViewPreprocess.for_model("inception_v3").image_size == 299
    images = torch.ones(1, 3, 4, 4)
    assert torch.equal(ViewPreprocess(32)(images), images)
    assert torch.allclose(proper(images)[0, 0, 0, 0], torch.tensor((1 - 0.485) / 0.229))


def test_region_search_through_the_renderer_in_both_modes(view_score):
    for parity in (False, True):
        result = robust_regions(view_score, [(45.0, 20.0), (200.0, 40.0)], OptimSettings(iterations=2, parity=parity))
        for regions in result.regions.values():
            assert all(torch.isfinite(r.trace).all() for r in regions)


@pytest.mark.parametrize("make, message", [
    (lambda: MapSettings(grid="3d"), "grid '3d' is unknown"),
    (lambda: MapSettings(azimuth_step=0), "azimuth_step=0"),
    (lambda: MapSettings(grid="1d", elevation_step=3), "2-D grid only"),
    (lambda: ViewPreprocess(32, mean=(0.5,)), "mean and std"),
    (lambda: ViewScore(tiny_classifier(), procedural_mesh("cube"), 7, ViewPreprocess(32)), "class 7"),
    (lambda: ViewScore(tiny_classifier(), procedural_mesh("cube"), 1, ViewPreprocess(32), grad_batch_size=0),
     "grad_batch_size=0"),
])
def test_bad_input_is_a_usage_error(make, message):
    with pytest.raises(UsageError, match=message):
        make()


def test_gradient_chunks_are_small_on_a_cpu_unless_given(view_score):
    assert view_score.grad_batch_size == min(view_score.batch_size, CPU_GRAD_BATCH)
    chosen = ViewScore(view_score.model, view_score.mesh, 1, ViewPreprocess(32), batch_size=32, grad_batch_size=2)
    assert chosen.grad_batch_size == 2


def test_chunked_gradients_match_one_call(view_score):
    from rtool.semantic.regions import _evaluate

    points = torch.tensor([[30.0, 20.0], [100.0, 40.0], [200.0, 10.0], [300.0, 60.0], [10.0, 5.0]],
                          dtype=torch.float64)
    one = ViewScore(view_score.model, view_score.mesh, 1, ViewPreprocess(32), batch_size=8, grad_batch_size=8)
    two = ViewScore(view_score.model, view_score.mesh, 1, ViewPreprocess(32), batch_size=8, grad_batch_size=2)
    values_one, grad_one = _evaluate(one, points, 3, OptimSettings())
    values_two, grad_two = _evaluate(two, points, 3, OptimSettings())
    torch.testing.assert_close(values_two, values_one)
    torch.testing.assert_close(grad_two, grad_one)
    assert grad_one.shape == (3, 2) and grad_one.abs().sum() > 0


def test_parity_gradient_of_a_classifier_is_cross_entropy_of_the_softmax(view_score):
    """With a ViewScore, parity's G is d/du CE(p, z) with p already softmaxed (about -df/du, per degree)."""
    from rtool.semantic.regions import _evaluate

    u = torch.tensor([[40.0, 20.0], [120.0, 50.0]], dtype=torch.float64)
    values, grad = _evaluate(view_score, u, 2, OptimSettings(parity=True))
    leaf = u.clone().requires_grad_(True)
    p = view_score.probabilities(leaf)
    loss = torch.nn.functional.cross_entropy(p, torch.full((2,), 1), reduction="sum")
    (want,) = torch.autograd.grad(loss, leaf)
    assert torch.allclose(grad, want, atol=1e-6) and torch.allclose(values, p[:, 1].double().detach())
    _, plus = _evaluate(view_score, u, 2, OptimSettings())
    leaf = u.clone().requires_grad_(True)
    (df,) = torch.autograd.grad(view_score(leaf).sum(), leaf)
    assert torch.allclose(plus, df, atol=1e-6)


def test_average_map_is_the_cell_mean_on_one_grid():
    from rtool.semantic import average_map

    first, second = semantic_map(analytic, TINY), semantic_map(lambda u: 1 - analytic(u), TINY)
    assert torch.allclose(average_map([first, second]).scores, torch.full((6, 8), 0.5))
    with pytest.raises(UsageError, match="different grids"):
        average_map([first, semantic_map(analytic, MapSettings(azimuth_step=90, elevation_step=17))])
