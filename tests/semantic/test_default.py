"""The embedded default: its map shows the planted range, and OIR_B started inside recovers it (IoU >= 0.5)."""
import pytest
import torch

from rtool.semantic import (MapSettings, OptimSettings, SemanticDefaultRecipe, ViewScore, load_semantic_default,
                            robust_regions, semantic_map)
from rtool.semantic.default import inside, training_views

from fixtures.semantic_recipe import SMALL_RECIPE as SMALL


@pytest.fixture(scope="session")
def default():
    return load_semantic_default(SMALL)


def iou(a, b, low, high):
    inter = (torch.minimum(b, high) - torch.maximum(a, low)).clamp(min=0).prod()
    return float(inter / ((b - a).prod() + (high - low).prod() - inter))


def test_training_views_label_the_planted_range_only():
    recipe = SemanticDefaultRecipe(meshes=("chair", "mug"), views_per_mesh=10, image_size=16)
    images, labels, views = training_views(recipe)
    assert images.shape == (20, 3, 16, 16) and views.shape == (20, 2)
    planted = inside(views, torch.tensor(recipe.planted_low), torch.tensor(recipe.planted_high))
    assert torch.equal(labels == 2, ~planted) and set(labels[planted].tolist()) <= {0, 1}
    assert labels[:5].tolist() == [0] * 5  # the first half of each mesh's views is inside the range


def test_map_shows_the_planted_range(default):
    f = ViewScore(default.model, default.meshes["chair"], 0, default.preprocess, batch_size=64)
    heat = semantic_map(f, MapSettings(azimuth_step=20, elevation_step=20))
    xx, yy = heat.meshgrid()
    u = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    margin = torch.tensor([10.0, 10.0], dtype=torch.float64)
    core = inside(u, default.planted_low + margin, default.planted_high - margin)
    away = ~inside(u, default.planted_low - margin, default.planted_high + margin)
    scores = heat.scores.reshape(-1)
    assert scores[core].mean() > 0.8 and scores[away].mean() < 0.1


def test_oir_b_started_inside_recovers_the_planted_range(default):
    f = ViewScore(default.model, default.meshes["chair"], 0, default.preprocess, batch_size=64)
    result = robust_regions(f, [(115.0, 35.0)], OptimSettings(methods=("OIR_B",), iterations=300))
    region = result.regions["OIR_B"][0]
    assert iou(region.a, region.b, default.planted_low, default.planted_high) >= 0.5
