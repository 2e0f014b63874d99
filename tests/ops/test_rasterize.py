"""rtool.ops.rasterize (+ its backward) vs the dense plain-PyTorch reference, plus the dispatcher contract."""
import pytest
import torch

import torch.nn.functional as F

from rtool.ops import rasterize, rasterize_backward, rasterize_image
from rtool.ops.reference import rasterize_backward_ref, rasterize_image_ref, rasterize_ref


def random_mesh(batch, num_vertices, num_faces, seed, dtype=torch.float64, device="cpu", spread=1.2):
    g = torch.Generator().manual_seed(seed)
    vertices = (torch.rand(batch, num_vertices, 3, generator=g, dtype=torch.float64) * 2 - 1) * spread
    vertices[..., 2] = torch.rand(batch, num_vertices, generator=g, dtype=torch.float64) * 3 + 0.5
    faces = torch.randint(0, max(num_vertices, 1), (num_faces, 3), generator=g)
    colors = torch.rand(batch, num_faces, 3, generator=g, dtype=torch.float64)
    return vertices.to(device, dtype), faces.to(device), colors.to(device, dtype)


def sample_inputs(device, requires_grad=False):
    """(args, kwargs) for rasterize: random, odd sizes, one face, empty, degenerate, off-screen, strided."""
    samples = []

    def add(vertices, faces, colors, size, **kwargs):
        vertices = vertices.clone().requires_grad_(requires_grad)
        colors = colors.clone().requires_grad_(requires_grad)
        samples.append(((vertices, faces, colors, size), kwargs))

    add(*random_mesh(2, 20, 30, seed=0, device=device), 24)
    add(*random_mesh(1, 9, 7, seed=1, device=device, dtype=torch.float32), 17)  # odd size, float32
    add(*random_mesh(3, 12, 10, seed=2, device=device), 19, cull_backfaces=False)
    add(*random_mesh(1, 3, 1, seed=3, device=device), 33)  # one face
    add(*random_mesh(0, 5, 4, seed=4, device=device), 8)  # no views
    v, f, c = random_mesh(2, 5, 0, seed=5, device=device)  # no faces
    add(v, f.reshape(0, 3), c.reshape(2, 0, 3), 8)
    v, f, c = random_mesh(1, 6, 3, seed=6, device=device)
    f = torch.tensor([[0, 1, 1], [2, 2, 2], [3, 4, 5]], device=device)  # two degenerate faces and a real one
    v[0, 5, :2] = v[0, 3, :2] + 0.5 * (v[0, 4, :2] - v[0, 3, :2])  # the real one collapsed onto a line
    add(v, f, c, 12)
    v, f, c = random_mesh(2, 10, 8, seed=7, device=device)
    add(v + torch.tensor([5.0, 0.0, 0.0], device=device, dtype=v.dtype), f, c, 10)  # nothing on screen
    v, f, c = random_mesh(2, 16, 12, seed=8, device=device)
    add(v.transpose(0, 1).contiguous().transpose(0, 1), f, c[:, :, :2], 15, near=1.0, far=2.5)  # strided, 2 ch
    return samples


def assert_same_raster(out, ref):
    image, face_index, bary, depth = out
    image_r, face_index_r, bary_r, depth_r = ref
    assert face_index.dtype == torch.long and face_index.shape == face_index_r.shape
    assert torch.equal(face_index, face_index_r)
    torch.testing.assert_close(image, image_r)
    torch.testing.assert_close(bary, bary_r)
    torch.testing.assert_close(depth, depth_r)


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_dense_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    assert_same_raster(rasterize(*args, **kwargs), rasterize_ref(*args, **kwargs))


@pytest.mark.parametrize("seed", range(4))
def test_matches_reference_larger_random(seed):
    # Face ids must agree where the choice is unambiguous; float64 random meshes have no exact ties.
    args = (*random_mesh(2, 60, 120, seed=10 + seed, spread=1.0), 40)
    assert_same_raster(rasterize(*args), rasterize_ref(*args))


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_backward_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    vertices, faces, colors, size = args
    image, face_index, _, _ = rasterize(*args, **kwargs)
    g = torch.Generator().manual_seed(index)
    grad_image = torch.randn(image.shape, generator=g, dtype=torch.float64).to(image.dtype)
    cull = kwargs.get("cull_backfaces", True)
    got = rasterize_backward(grad_image, image, face_index, vertices, faces, cull)
    want = rasterize_backward_ref(grad_image, image, face_index, vertices, faces, cull)
    assert got.shape == vertices.shape
    torch.testing.assert_close(got, want, atol=1e-4 if vertices.dtype == torch.float32 else 1e-9, rtol=1e-5)
    assert torch.all(got[..., 2] == 0)


def test_edges_carry_gradient_and_flat_interiors_do_not():
    # A square with flat colour: the image sum is its area, so the vertex gradient is the edge motion.
    vertices = torch.tensor([[[-0.52, -0.47, 2.0], [0.49, -0.47, 2.0], [0.49, 0.53, 2.0], [-0.52, 0.53, 2.0]]],
                            dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    colors = torch.ones(1, 2, 1, dtype=torch.float64)
    size = 64
    image = rasterize(vertices, faces, colors, size)[0]
    image.sum().backward()
    # d(area in pixels)/d(x of the right edge in ndc) = height in pixels * S/2, shared by its two vertices.
    height = image[0, 0, :, size // 2].sum().item()
    right = vertices.grad[0, 1, 0] + vertices.grad[0, 2, 0]
    assert right.item() == pytest.approx(height * size / 2, rel=0.05)
    assert (vertices.grad[0, 0, 0] + vertices.grad[0, 3, 0]).item() == pytest.approx(-height * size / 2, rel=0.05)
    assert torch.all(vertices.grad[..., 2] == 0)


def test_colors_gradient_is_the_covered_pixel_sum():
    vertices, faces, colors = random_mesh(2, 20, 30, seed=21)
    colors.requires_grad_(True)
    image, face_index, _, _ = rasterize(vertices, faces, colors, 20)
    weights = torch.rand(image.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    (image * weights).sum().backward()
    expected = torch.zeros_like(colors)
    for b in range(2):
        for f in range(30):
            expected[b, f] = (weights[b] * (face_index[b] == f)).sum(dim=(1, 2))
    torch.testing.assert_close(colors.grad, expected)


def test_batch_equals_views_one_by_one():
    vertices, faces, colors = random_mesh(4, 25, 40, seed=31)
    image, face_index, bary, depth = rasterize(vertices, faces, colors, 21)
    for b in range(4):
        one = rasterize(vertices[b:b + 1], faces, colors[b:b + 1], 21)
        assert_same_raster(one, (image[b:b + 1], face_index[b:b + 1], bary[b:b + 1], depth[b:b + 1]))


def test_nearest_face_wins_and_ties_go_to_the_lower_id():
    square = [[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8]]
    near_face = [[x, y, 2.0] for x, y in square]
    far_face = [[x, y, 3.0] for x, y in square]
    vertices = torch.tensor([far_face + near_face], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    colors = torch.tensor([[[0.25], [0.75]]], dtype=torch.float64)
    image, face_index, _, depth = rasterize(vertices, faces, colors, 16)
    covered = face_index >= 0
    assert covered.any() and torch.all(face_index[covered] == 1)
    assert torch.allclose(depth[covered], torch.full_like(depth[covered], 2.0))
    tie = torch.tensor([near_face + near_face], dtype=torch.float64)
    _, face_index, _, _ = rasterize(tie, faces, colors, 16)
    assert torch.all(face_index[face_index >= 0] == 0)


def test_backfaces_are_culled_unless_asked():
    ccw = torch.tensor([[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]], dtype=torch.float64)
    cw_faces = torch.tensor([[0, 2, 1]])
    colors = torch.ones(1, 1, 3, dtype=torch.float64)
    assert (rasterize(ccw, cw_faces, colors, 16)[1] >= 0).sum() == 0
    assert (rasterize(ccw, cw_faces, colors, 16, cull_backfaces=False)[1] >= 0).sum() > 0
    assert (rasterize(ccw, torch.tensor([[0, 1, 2]]), colors, 16)[1] >= 0).sum() > 0


def pooled_rasterize(vertices, faces, colors, size, supersample, **kwargs):
    """What rasterize_image replaces: the full-size image of rasterize, average-pooled."""
    image = rasterize(vertices, faces, colors, size * supersample, **kwargs)[0]
    return F.avg_pool2d(image, supersample) if supersample > 1 else image


@pytest.mark.parametrize("supersample", [1, 2, 3])
@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_image_matches_reference(index, supersample):
    (vertices, faces, colors, size), kwargs = sample_inputs("cpu")[index]
    got = rasterize_image(vertices, faces, colors, size, supersample, **kwargs)
    torch.testing.assert_close(got, rasterize_image_ref(vertices, faces, colors, size, supersample, **kwargs))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("supersample, size", [(1, 40), (2, 23), (3, 17), (5, 9), (17, 3)])
def test_image_is_the_pooled_rasterize_bit_for_bit(supersample, size, dtype):
    # Overlapping faces, odd sizes and factors whose blocks do not divide the 16-pixel tiles.
    vertices, faces, colors = random_mesh(3, 60, 150, seed=51, dtype=dtype, spread=1.0)
    got = rasterize_image(vertices, faces, colors, size, supersample)
    assert got.shape == (3, 3, size, size) and got.dtype == dtype
    assert torch.equal(got, pooled_rasterize(vertices, faces, colors, size, supersample))


def test_image_writes_background_and_empty_meshes_as_zero():
    v, f, c = random_mesh(2, 5, 0, seed=5)
    image = rasterize_image(v, f.reshape(0, 3), c.reshape(2, 0, 3), 8, 2)
    assert image.shape == (2, 3, 8, 8) and torch.all(image == 0)
    v, f, c = random_mesh(2, 10, 8, seed=7)
    assert torch.all(rasterize_image(v + torch.tensor([5.0, 0.0, 0.0], dtype=v.dtype), f, c, 10, 2) == 0)


def test_image_errors_name_the_operator():
    args = random_mesh(1, 5, 4, seed=0)
    with pytest.raises(RuntimeError, match=r"rtool\.rasterize_image: supersample must be > 0"):
        rasterize_image(*args, 8, 0)
    with pytest.raises(RuntimeError, match=r"rtool\.rasterize_image: colors must be \[B, F, C\]"):
        rasterize_image(args[0], args[1], args[2][:, :2], 8, 2)


def test_opcheck_image():
    for (vertices, faces, colors, size), kwargs in sample_inputs("cpu"):
        for supersample in (1, 2):
            torch.library.opcheck(torch.ops.rtool.rasterize_image.default,
                                  (vertices, faces, colors, size, supersample), kwargs)


def test_opcheck():
    for args, kwargs in sample_inputs("cpu", requires_grad=True):
        torch.library.opcheck(torch.ops.rtool.rasterize.default, args, kwargs)


def test_opcheck_backward():
    for args, kwargs in sample_inputs("cpu")[:3]:
        image, face_index, _, _ = rasterize(*args, **kwargs)
        grad_vertices_args = (torch.ones_like(image), image, face_index, args[0], args[1])
        torch.library.opcheck(torch.ops.rtool.rasterize_backward.default, grad_vertices_args)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda v, f, c: (v[0], f, c), "vertices must be [B, V, 3]"),
        (lambda v, f, c: (v.to(torch.int32), f, c), "vertices must be float32 or float64"),
        (lambda v, f, c: (v, f[:, :2], c), "faces must be [F, 3]"),
        (lambda v, f, c: (v, f.to(torch.int32), c), "faces must be int64"),
        (lambda v, f, c: (v, f + 100, c), "out of range for 20 vertices"),
        (lambda v, f, c: (v, f, c[:, :3]), "colors must be [B, F, C]"),
        (lambda v, f, c: (v, f, c.float()), "colors must have the vertices' dtype"),
    ],
)
def test_one_line_errors_name_the_argument(mutate, fragment):
    vertices, faces, colors = random_mesh(2, 20, 30, seed=0)
    with pytest.raises(RuntimeError, match=r"rtool\.rasterize: ") as info:
        rasterize(*mutate(vertices, faces, colors), 16)
    assert fragment in str(info.value).splitlines()[0]


def test_bad_size_and_planes():
    args = random_mesh(1, 5, 4, seed=0)
    with pytest.raises(RuntimeError, match="image_size must be > 0"):
        rasterize(*args, 0)
    with pytest.raises(RuntimeError, match="need 0 < near < far"):
        rasterize(*args, 8, near=2.0, far=1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    for args, kwargs in sample_inputs("cpu"):
        cpu = rasterize(*args, **kwargs)
        cuda_args = tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)
        gpu = rasterize(*cuda_args, **kwargs)
        assert_same_raster(tuple(t.cpu() for t in gpu), cpu)
        image, face_index = cpu[0], cpu[1]
        grad = torch.ones_like(image)
        want = rasterize_backward(grad, image, face_index, args[0], args[1], kwargs.get("cull_backfaces", True))
        got = rasterize_backward(grad.cuda(), image.cuda(), face_index.cuda(), cuda_args[0], cuda_args[1],
                                 kwargs.get("cull_backfaces", True))
        torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=1e-5)
        for supersample in (1, 2, 3):
            vertices, faces, colors, size = args
            image = rasterize_image(*cuda_args, supersample, **kwargs).cpu()
            assert torch.equal(image, rasterize_image(vertices, faces, colors, size, supersample, **kwargs))


def test_result_does_not_depend_on_the_thread_count():
    vertices, faces, colors = random_mesh(3, 80, 200, seed=41, dtype=torch.float32, spread=1.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = rasterize(vertices, faces, colors, 70)
        grad_one = rasterize_backward(torch.ones_like(one[0]), one[0], one[1], vertices, faces)
        torch.set_num_threads(max(2, threads))
        many = rasterize(vertices, faces, colors, 70)
        grad_many = rasterize_backward(torch.ones_like(many[0]), many[0], many[1], vertices, faces)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, many):
        assert torch.equal(a, b)
    assert torch.equal(grad_one, grad_many)


def test_image_does_not_depend_on_the_thread_count():
    vertices, faces, colors = random_mesh(3, 80, 200, seed=41, dtype=torch.float32, spread=1.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = rasterize_image(vertices, faces, colors, 35, 2)
        torch.set_num_threads(max(2, threads))
        many = rasterize_image(vertices, faces, colors, 35, 2)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, many)
