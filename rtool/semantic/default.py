"""The embedded default of `rtool semantic`: procedural meshes and a small CNN that sees each object as its
class only from a planted viewpoint range (every other view is labelled "background"), trained on renders
and cached. The planted range is then the one robust region the search must recover.

The range is square (equal azimuth and elevation sides) because naive and OIR_B keep a square start box
square (spec §7.5): a square planted range is one they can match.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from rtool.engine import generator
from rtool.models import ShapesCNN, cached_model, train_classifier
from rtool.render import Mesh, Renderer, procedural_mesh
from rtool.semantic.space import domain
from rtool.semantic.views import ViewPreprocess


@dataclass(frozen=True)
class SemanticDefaultRecipe:
    """Everything that changes the trained default model (its cache key)."""

    meshes: tuple[str, ...] = ("chair", "mug")           # azimuth-asymmetric procedural meshes, one class each
    planted_low: tuple[float, float] = (80.0, 0.0)      # (azimuth, elevation) of the planted range's corner
    planted_high: tuple[float, float] = (150.0, 70.0)
    image_size: int = 48
    views_per_mesh: int = 1500                           # uniform over Ω, half of them inside the planted range
    epochs: int = 12
    lr: float = 3e-3
    batch_size: int = 128
    seed: int = 0


@dataclass
class SemanticDefault:
    model: nn.Module
    meshes: dict[str, Mesh]       # class name -> mesh; class index = position in `class_names`
    class_names: list[str]        # the meshes, then "background"
    planted_low: torch.Tensor     # [2]
    planted_high: torch.Tensor    # [2]
    preprocess: ViewPreprocess
    identity: dict


def inside(u: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """[N] bool: views u [N, 2] inside the box [low, high]."""
    return ((u >= low) & (u <= high)).all(dim=1)


def training_views(recipe: SemanticDefaultRecipe) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images [N, 3, S, S], labels [N], views [N, 2]): each mesh from random views, half inside the planted range."""
    gen = generator(recipe.seed)
    low, high = domain(2)
    planted_low = torch.tensor(recipe.planted_low, dtype=torch.float64)
    planted_high = torch.tensor(recipe.planted_high, dtype=torch.float64)
    renderer = Renderer(image_size=recipe.image_size, views_per_pass=64)
    background = len(recipe.meshes)
    images, labels, views = [], [], []
    half = recipe.views_per_mesh // 2
    for index, name in enumerate(recipe.meshes):
        mesh = procedural_mesh(name)
        anywhere = low + torch.rand(recipe.views_per_mesh - half, 2, generator=gen, dtype=torch.float64) * (high - low)
        planted = planted_low + torch.rand(half, 2, generator=gen, dtype=torch.float64) * (planted_high - planted_low)
        u = torch.cat([planted, anywhere])
        u[:, 1] = u[:, 1].clamp(max=89.0)
        with torch.no_grad():
            images.append(renderer.render(mesh, u[:, 0], u[:, 1]))
        labels.append(torch.where(inside(u, planted_low, planted_high), index, background))
        views.append(u)
    return torch.cat(images), torch.cat(labels), torch.cat(views)


def load_semantic_default(recipe: SemanticDefaultRecipe = SemanticDefaultRecipe(), *,
                          device: torch.device | str = "cpu", quiet: bool = True) -> SemanticDefault:
    """Load the cached model for `recipe`, or render its training views and train it (first time only)."""
    class_names = list(recipe.meshes) + ["background"]
    identity = {"dataset": "semantic_procedural", "recipe": asdict(recipe), "model": "semantic_default"}

    def fit(model: nn.Module) -> nn.Module:
        images, labels, _ = training_views(recipe)
        return train_classifier(model, images, labels, epochs=recipe.epochs, lr=recipe.lr,
                                batch_size=recipe.batch_size, seed=recipe.seed, device=device,
                                progress=not quiet)

    model = cached_model(identity, lambda: ShapesCNN(num_classes=len(class_names)), fit)
    return SemanticDefault(model=model.to(device).eval(),
                           meshes={name: procedural_mesh(name) for name in recipe.meshes},
                           class_names=class_names,
                           planted_low=torch.tensor(recipe.planted_low, dtype=torch.float64),
                           planted_high=torch.tensor(recipe.planted_high, dtype=torch.float64),
                           preprocess=ViewPreprocess(recipe.image_size), identity=identity)
