"""rtool.render.Renderer: geometry a person can predict (silhouette areas, which faces are lit how bright),
batching, empty views, and edge-aware gradients in the camera angles against finite differences."""
import math

import pytest
import torch

from rtool.render import Mesh, Renderer, procedural_mesh
from rtool.render.camera import CAMERA_DISTANCE, VIEW_HALF_ANGLE_DEG

TAN = math.tan(math.radians(VIEW_HALF_ANGLE_DEG))


def square(z_world=0.0, half=0.5):
    """A square in the plane z = z_world, facing the camera at azimuth 0 (which sits at -Z)."""
    v = torch.tensor([[-half, -half, z_world], [half, -half, z_world], [half, half, z_world], [-half, half, z_world]],
                     dtype=torch.float64)
    return Mesh(v, torch.tensor([[0, 1, 2], [0, 2, 3]]), "square")


def half_cube():
    cube = procedural_mesh("cube", dtype=torch.float64)
    return Mesh(cube.vertices * 0.5, cube.faces, "half cube")


def test_square_silhouette_area_and_side_brightness():
    size = 64
    renderer = Renderer(image_size=size, dtype=torch.float64)
    image = renderer.render(square(), 0.0, 0.0)[0]
    # Seen head-on from distance d the side 1 spans 1 / (d tan30) of the half-width in ndc.
    side_pixels = size * 1.0 / (CAMERA_DISTANCE * TAN) / 2 * 2 / 2
    coverage = image[0].sum().item() / 0.5  # a vertical face is lit 0.5 (ambient only)
    assert coverage == pytest.approx(side_pixels ** 2, rel=0.03)
    assert torch.allclose(image[0], image[1]) and torch.allclose(image[1], image[2])  # white texture
    assert set(image.unique().tolist()) <= {0.0, 0.125, 0.25, 0.375, 0.5}  # 2x2 average of 0 / 0.5 subpixels
    assert image[:, 0, :].abs().sum() == 0 and image[:, :, 0].abs().sum() == 0  # black background
    # The back side is drawn too (double-sided), as a mirror image.
    back = renderer.render(square(), 180.0, 0.0)[0]
    assert back[0].sum().item() / 0.5 == pytest.approx(coverage, rel=0.03)


def test_cube_faces_are_lit_by_their_world_normal():
    size = 48
    renderer = Renderer(image_size=size, supersample=1, dtype=torch.float64)
    cube = half_cube()
    from_above = renderer.render(cube, 0.0, 89.0)[0, 0]
    centre = from_above[size // 2 - 3:size // 2 + 3, size // 2 - 3:size // 2 + 3]
    assert torch.all(centre == 1.0)  # the top face: 0.5 + 0.5 * (n . +Y) with n = +Y
    from_below = renderer.render(cube, 0.0, -89.0)[0, 0]
    assert torch.all(from_below[from_below > 0] == 0.5)  # bottom face: n = -Y, ambient only
    side = renderer.render(cube, 0.0, 0.0)[0, 0]
    assert set(side.unique().tolist()) == {0.0, 0.5}  # only the front face, unlit by +Y
    oblique = renderer.render(cube, 45.0, 30.0)[0, 0]
    values = oblique.unique().tolist()
    assert values == [0.0, 0.5, 1.0]  # two sides and the top
    assert (oblique == 1.0).sum() > 0.15 * (oblique > 0).sum()


def test_cube_silhouette_area_matches_projection():
    size = 64
    renderer = Renderer(image_size=size, dtype=torch.float64)
    image = renderer.render(half_cube(), 0.0, 0.0)[0, 0]
    # Head-on the front face (z = -0.5, depth d - 0.5) hides the rest: side 1 at depth d - 0.5.
    side = size * (1 / ((CAMERA_DISTANCE - 0.5) * TAN)) / 2
    assert (image.sum().item() / 0.5) == pytest.approx(side ** 2, rel=0.03)


def test_batch_equals_one_by_one_and_scalar_broadcasts():
    renderer = Renderer(image_size=24)
    mesh = procedural_mesh("mug")
    azimuth, elevation = [0.0, 37.0, 181.0, 300.0], [10.0, -10.0, 45.0, 80.0]
    batch = renderer.render(mesh, azimuth, elevation)
    assert batch.shape == (4, 3, 24, 24)
    for k in range(4):
        assert torch.equal(batch[k:k + 1], renderer.render(mesh, azimuth[k], elevation[k]))
    assert torch.equal(renderer.render(mesh, azimuth, 10.0)[0], batch[0])
    in_passes = Renderer(image_size=24, views_per_pass=3).render(mesh, azimuth, elevation)
    assert torch.equal(in_passes, batch)


@pytest.mark.parametrize("supersample", [1, 2, 3])
def test_render_without_a_graph_equals_the_differentiable_render(supersample):
    # No grad needed: the image-only kernel; with grad: rasterize + avg_pool2d. The same bits either way.
    renderer = Renderer(image_size=40, supersample=supersample)
    mesh = procedural_mesh("chair")
    azimuth = torch.tensor([0.0, 37.0, 181.0, 300.0], requires_grad=True)
    elevation = torch.tensor([10.0, -10.0, 45.0, 80.0])
    with_graph = renderer.render(mesh, azimuth, elevation)
    assert with_graph.requires_grad
    with torch.no_grad():
        without = renderer.render(mesh, azimuth, elevation)
    assert torch.equal(without, with_graph.detach())
    assert torch.equal(renderer.render(mesh, azimuth.detach(), elevation), without)


def test_degenerate_faces_and_empty_views():
    renderer = Renderer(image_size=16)
    cube = procedural_mesh("cube")
    degenerate = torch.tensor([[0, 0, 1], [2, 2, 2]])
    with_junk = Mesh(cube.vertices, torch.cat([cube.faces, degenerate]), "cube+junk")
    torch.testing.assert_close(renderer.render(with_junk, 30.0, 20.0), renderer.render(cube, 30.0, 20.0))
    far_away = Mesh(cube.vertices * 0.01 + torch.tensor([0.0, 0.0, 50.0]), cube.faces, "behind")
    assert renderer.render(far_away, 0.0, 0.0).abs().sum() == 0  # the object sits behind the camera
    no_views = renderer.render(cube, torch.empty(0), torch.empty(0))
    assert no_views.shape == (0, 3, 16, 16)
    no_faces = Mesh(cube.vertices, torch.empty(0, 3, dtype=torch.long), "empty")
    assert renderer.render(no_faces, [0.0, 10.0], 5.0).abs().sum() == 0


def smooth_weights(size):
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size, dtype=torch.float64),
                            torch.linspace(-1, 1, size, dtype=torch.float64), indexing="ij")
    return torch.stack([torch.cos(2.1 * xs + 0.7 * ys + 0.3), torch.sin(1.3 * ys - 1.7 * xs),
                        torch.exp(-3 * ((xs - 0.2) ** 2 + (ys + 0.1) ** 2))])


@pytest.fixture(scope="module")
def angle_gradients():
    """Autograd and central finite differences of sum(w * image) in (azimuth, elevation), per view."""
    size, step = 40, 1.0
    renderer = Renderer(image_size=size, dtype=torch.float64)
    weights = smooth_weights(size)

    def loss(images):
        return (images * weights).sum(dim=(1, 2, 3))

    azimuth = torch.tensor([20.0, 75.0, 130.0, 200.0, 250.0, 320.0], dtype=torch.float64)
    elevation = torch.tensor([10.0, 35.0, -5.0, 50.0, 25.0, 15.0], dtype=torch.float64)
    rows = {}
    for name in ["cube", "cone", "torus", "mug", "table", "pyramid"]:
        mesh = procedural_mesh(name, dtype=torch.float64, **({"segments": 24, "rings": 10} if name == "torus" else {}))
        az, el = azimuth.clone().requires_grad_(True), elevation.clone().requires_grad_(True)
        loss(renderer.render(mesh, az, el)).sum().backward()
        with torch.no_grad():
            fd_az = (loss(renderer.render(mesh, azimuth + step, elevation))
                     - loss(renderer.render(mesh, azimuth - step, elevation))) / (2 * step)
            fd_el = (loss(renderer.render(mesh, azimuth, elevation + step))
                     - loss(renderer.render(mesh, azimuth, elevation - step))) / (2 * step)
        rows[name] = (torch.cat([az.grad, el.grad]), torch.cat([fd_az, fd_el]))
    return rows


def test_angle_gradient_correlates_with_finite_differences(angle_gradients):
    analytic = torch.cat([a for a, _ in angle_gradients.values()])
    numeric = torch.cat([n for _, n in angle_gradients.values()])
    assert analytic.abs().max() > 0.1 * numeric.abs().max()  # an edge-blind gradient would be ~0 here
    assert torch.corrcoef(torch.stack([analytic, numeric]))[0, 1] >= 0.9
    for name, (a, n) in angle_gradients.items():
        assert torch.corrcoef(torch.stack([a, n]))[0, 1] >= 0.8, name


def test_angle_gradient_sign_agrees_where_it_matters(angle_gradients):
    for name, (a, n) in angle_gradients.items():
        clear = n.abs() > 0.25 * n.abs().max()
        assert clear.any()
        assert torch.all(torch.sign(a[clear]) == torch.sign(n[clear])), name


def test_gradient_flows_only_through_edges():
    # Flat, world-fixed shading: interior colours do not depend on the camera, so a loss that weighs only
    # pixels far from every colour change has zero angle gradient, while the whole image's does not.
    renderer = Renderer(image_size=32, dtype=torch.float64)
    cube = procedural_mesh("cube", dtype=torch.float64)
    az = torch.tensor([30.0], dtype=torch.float64, requires_grad=True)
    image = renderer.render(cube, az, 20.0)
    pool = torch.nn.functional.max_pool2d
    flat = (pool(image[:, :1], 5, 1, 2) == -pool(-image[:, :1], 5, 1, 2)) & (image[:, :1] > 0)
    assert flat.sum() > 50
    (image * flat).sum().backward(retain_graph=True)
    assert az.grad.abs().item() == 0
    az.grad = None
    image.sum().backward()
    assert az.grad.abs().item() > 1.0


def grid_cube(n):
    """The cube with each side cut into n x n squares (2 n² coplanar triangles of one colour per side)."""
    vertices, faces = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            base = len(vertices)
            for i in range(n + 1):
                for j in range(n + 1):
                    p = [0.0, 0.0, 0.0]
                    p[axis], p[(axis + 1) % 3], p[(axis + 2) % 3] = sign, -1 + 2 * i / n, -1 + 2 * j / n
                    vertices.append(p)
            for i in range(n):
                for j in range(n):
                    a = base + i * (n + 1) + j
                    b = a + n + 1
                    faces += [(a, b, b + 1), (a, b + 1, a + 1)]
    return Mesh(torch.tensor(vertices, dtype=torch.float64), torch.tensor(faces), "grid cube")


def test_tiny_coplanar_triangles_keep_the_angle_gradient():
    # Triangles of about two internal pixels (like a dense CAD mesh): boundaries then often sit one face
    # further than the face a pixel lies in; the gradient must stay close to the 12-face cube's.
    renderer = Renderer(image_size=40, dtype=torch.float64)
    weights = smooth_weights(40)
    azimuth = torch.tensor([20.0, 130.0, 250.0], dtype=torch.float64)
    elevation = torch.tensor([10.0, -5.0, 25.0], dtype=torch.float64)
    grads = []
    for mesh in (procedural_mesh("cube", dtype=torch.float64), grid_cube(16)):
        az, el = azimuth.clone().requires_grad_(True), elevation.clone().requires_grad_(True)
        (renderer.render(mesh, az, el) * weights).sum().backward()
        grads.append(torch.cat([az.grad, el.grad]))
    coarse, fine = grads
    assert torch.corrcoef(torch.stack([coarse, fine]))[0, 1] >= 0.95
    assert 0.7 <= (fine.norm() / coarse.norm()).item() <= 1.3
