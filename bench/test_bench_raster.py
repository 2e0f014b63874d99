"""rtool.ops.rasterize (forward + edge-aware backward) vs its dense plain-PyTorch reference, the whole
render, and resnet18 classifying the rendered views.

Geometry of the semantic analysis: 224² output drawn at 448², a 2,000- and a 20,000-face torus (drawn
double-sided, so the rasterizer sees 4,000 / 40,000 faces), batches of 32 views. The dense reference tests
every pixel against every face, so it runs on fewer views (its cost is exactly linear in views); compare
views per second (`ops` column x views). The anchor library (neural_renderer) does not build here.
"""
import pytest
import torch

from rtool.ops import rasterize, rasterize_backward
from rtool.ops.reference import rasterize_backward_ref, rasterize_ref
from rtool.render import Renderer, procedural_mesh
from rtool.render.camera import double_sided, face_shading

MESHES = {"2k": {"segments": 50, "rings": 20}, "20k": {"segments": 200, "rings": 50}}
VIEWS = 32
REFERENCE_VIEWS = {"2k": 1, "20k": 1}
REFERENCE_SIZE = {"2k": 448, "20k": 112}  # the 20k-face reference is timed on 1/16 of the pixels


def raster_inputs(mesh_name, views, size=448):
    mesh = procedural_mesh("torus", **MESHES[mesh_name])
    renderer = Renderer(image_size=size // 2)
    azimuth = torch.linspace(0, 357, views)
    elevation = torch.linspace(-10, 80, views)
    projected = renderer.project(mesh, azimuth, elevation)
    faces = double_sided(mesh.faces)
    colors = face_shading(mesh.vertices, faces)[None, :, None].expand(views, -1, 3).contiguous()
    return projected.contiguous(), faces, colors


def forward_backward(raster, backward, vertices, faces, colors, size):
    image, face_index, _, _ = raster(vertices, faces, colors, size)
    grad = torch.ones_like(image)
    return backward(grad, image, face_index, vertices, faces)


@pytest.mark.parametrize("mesh_name", list(MESHES))
@pytest.mark.parametrize("implementation", ["rtool", "reference"])
def test_raster_forward_backward(benchmark, mesh_name, implementation):
    benchmark.group = f"rasterize fwd+bwd {mesh_name} faces"
    if implementation == "rtool":
        views, size, fns = VIEWS, 448, (rasterize, rasterize_backward)
    else:
        views, size = REFERENCE_VIEWS[mesh_name], REFERENCE_SIZE[mesh_name]
        fns = (rasterize_ref, rasterize_backward_ref)
    vertices, faces, colors = raster_inputs(mesh_name, views, size)
    benchmark.extra_info.update(views=views, internal_size=size, faces=int(faces.shape[0]))
    rounds = 3 if implementation == "rtool" else 1
    benchmark.pedantic(lambda: forward_backward(*fns, vertices, faces, colors, size), rounds=rounds, warmup_rounds=1 if
                       implementation == "rtool" else 0)


@pytest.mark.parametrize("mesh_name", list(MESHES))
def test_raster_forward_only(benchmark, mesh_name):
    benchmark.group = f"rasterize fwd {mesh_name} faces"
    vertices, faces, colors = raster_inputs(mesh_name, VIEWS)
    benchmark.extra_info.update(views=VIEWS, internal_size=448)
    benchmark.pedantic(lambda: rasterize(vertices, faces, colors, 448), rounds=3, warmup_rounds=1)


@pytest.mark.parametrize("with_grad", [False, True])
def test_whole_render(benchmark, with_grad):
    """Camera + raster + shading + pool for 32 views of the 2,000-face mesh at 224² (448² internal)."""
    benchmark.group = "whole render 2k faces, 32 views"
    mesh = procedural_mesh("torus", **MESHES["2k"])
    renderer = Renderer(image_size=224)
    azimuth = torch.linspace(0, 357, VIEWS)
    elevation = torch.full((VIEWS,), 35.0)
    benchmark.extra_info.update(views=VIEWS)

    def run():
        if not with_grad:
            with torch.no_grad():
                return renderer.render(mesh, azimuth, elevation)
        az = azimuth.clone().requires_grad_(True)
        el = elevation.clone().requires_grad_(True)
        renderer.render(mesh, az, el).mean().backward()
        return az.grad

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)


def test_resnet18_classifies_views(benchmark):
    """What the semantic map spends per view besides rendering: resnet18 on 32 views of 224²."""
    import torchvision

    benchmark.group = "whole render 2k faces, 32 views"
    model = torchvision.models.resnet18(weights=None).eval()
    images = torch.rand(VIEWS, 3, 224, 224)
    benchmark.extra_info.update(views=VIEWS)

    def run():
        with torch.inference_mode():
            return model(images).softmax(1)

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
