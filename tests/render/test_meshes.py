"""Meshes: the OBJ reader (records, indices, fans, one-line errors), the normalisation, the ShapeNet layout
and class table, and the procedural shapes."""
import pytest
import torch
import torchvision

from rtool.errors import UsageError
from rtool.render import (PROCEDURAL_MESHES, SEMANTIC_CLASSES, Renderer, load_obj, load_shapenet, model_ids,
                          normalize_vertices, procedural_mesh, semantic_class, shapenet_mesh_path)

QUAD_OBJ = """# a unit square as one quad, with texture and normal records the reader ignores
mtllib box.mtl
o square
v 0 0 0
v 2 0 0
v 2 1 0
v 0 1 0
vt 0 0
vn 0 0 1
usemtl white
s off
f 1/1/1 2/1/1 3/1/1 4/1/1
"""


def write(tmp_path, text, name="mesh.obj"):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def test_quad_is_fan_triangulated_and_normalised(tmp_path):
    mesh = load_obj(write(tmp_path, QUAD_OBJ))
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 2, 3]]
    # longest side (x, 2 long) spans 2 and the box is centred: x in [-1, 1], y in [-0.5, 0.5], z = 0
    torch.testing.assert_close(mesh.vertices.amin(0), torch.tensor([-1.0, -0.5, 0.0]))
    torch.testing.assert_close(mesh.vertices.amax(0), torch.tensor([1.0, 0.5, 0.0]))
    raw = load_obj(write(tmp_path, QUAD_OBJ), normalize=False)
    assert raw.vertices[1].tolist() == [2.0, 0.0, 0.0]


def test_negative_and_slash_indices_and_pentagon(tmp_path):
    text = "v 0 0 0\nv 1 0 0\nv 1 1 0\nf -3 -2 -1\nv 0 1 0\nv -1 0.5 0\nf 1//1 2/5 3 4/1/2 -1\n"
    mesh = load_obj(write(tmp_path, text), normalize=False)
    assert mesh.faces.tolist() == [[0, 1, 2], [0, 1, 2], [0, 2, 3], [0, 3, 4]]


def test_normalisation_matches_the_spec_steps():
    v = torch.tensor([[1.0, 2.0, 3.0], [5.0, 4.0, 3.5], [2.0, 3.0, 7.0]], dtype=torch.float64)
    expected = v - v.min(0).values
    expected = expected / expected.abs().max() * 2
    expected = expected - expected.max(0).values / 2
    torch.testing.assert_close(normalize_vertices(v), expected)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "mesh.obj:0: no vertices"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\n", "mesh.obj:3: no faces"),
        ("v 0 0 0\nv 1 nan 0\nv 0 1 0\nf 1 2 3\n", "mesh.obj:2: vertex '1 nan 0' is not finite"),
        ("v 0 0 0\nv 1 inf 0\n", "mesh.obj:2: vertex '1 inf 0' is not finite"),
        ("v 0 0\n", "mesh.obj:1: vertex needs 3 coordinates"),
        ("v 0 0 zero\n", "mesh.obj:1: vertex coordinates"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", "mesh.obj:4: face needs at least 3 corners"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "mesh.obj:4: face corner 'x' is not a vertex index"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "mesh.obj:4: face corner '0': OBJ indices start at 1"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 -4\n", "mesh.obj:4: face corner '-4' refers before the first vertex"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n", "mesh.obj:5: face refers to vertex 9"),
        ("v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n", "single point"),
        (b"v 0 0 0\n\xff\xfe\x00garbage\n", "mesh.obj:2: not text"),
    ],
)
def test_bad_files_are_one_line_errors_naming_file_and_line(tmp_path, text, fragment):
    with pytest.raises(UsageError) as info:
        load_obj(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    assert fragment in message
    assert str(tmp_path / "mesh.obj") in message or "single point" in fragment


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read the OBJ file"):
        load_obj(tmp_path / "nope.obj")


def test_class_table_matches_torchvision_names():
    categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert [c.class_nb for c in SEMANTIC_CLASSES] == list(range(10))
    for entry in SEMANTIC_CLASSES:
        assert categories[entry.imagenet_index] == entry.imagenet_name, entry
    assert [c.imagenet_index for c in SEMANTIC_CLASSES] == [404, 435, 703, 898, 559, 968, 579, 413, 883, 861]
    assert semantic_class("bathtub").class_nb == 1 and semantic_class("02691156").folder == "aeroplane"
    with pytest.raises(UsageError, match="unknown semantic class"):
        semantic_class("teapot")


def test_shapenet_layout_sorted_ids(tmp_path):
    for folder, ids in (("bathtub", ["b08727e6", "a1", "c3"]), ("02691156", ["z9", "k2"])):
        for model in ids:
            path = tmp_path / folder / model / "models" / "model_normalized.obj"
            path.parent.mkdir(parents=True)
            path.write_text(QUAD_OBJ)
    (tmp_path / "bathtub" / "no_model" / "models").mkdir(parents=True)  # skipped: no mesh file
    assert model_ids(tmp_path, 1) == ["a1", "b08727e6", "c3"]
    assert shapenet_mesh_path(tmp_path, "bathtub", 1).parts[-3] == "b08727e6"
    mesh = load_shapenet(tmp_path, 0, 1)  # by class number, found through the synset folder
    assert mesh.name == "z9" and mesh.num_faces == 2
    with pytest.raises(UsageError, match="object 3 out of range"):
        shapenet_mesh_path(tmp_path, 1, 3)
    with pytest.raises(UsageError, match="no folder 'chair' or '03001627'"):
        model_ids(tmp_path, "chair")


def test_procedural_shapes_are_distinct_normalised_and_render():
    assert len(PROCEDURAL_MESHES) >= 10
    renderer = Renderer(image_size=24)
    silhouettes = []
    for name in PROCEDURAL_MESHES:
        mesh = procedural_mesh(name)
        assert 4 <= mesh.num_faces <= 5000, name
        extent = mesh.vertices.amax(0) - mesh.vertices.amin(0)
        assert extent.max().item() == pytest.approx(2.0) and mesh.vertices.abs().max().item() <= 1.0 + 1e-6
        image = renderer.render(mesh, [30.0, 120.0], 25.0)
        assert image.sum() > 0, name
        silhouettes.append((image[:, 0] > 0).flatten())
    stacked = torch.stack(silhouettes).float()
    distances = torch.cdist(stacked, stacked, p=1)
    assert (distances + torch.eye(len(silhouettes)) * 1e9).min() > 0  # no two shapes look the same
    with pytest.raises(UsageError, match="unknown procedural mesh 'blob'"):
        procedural_mesh("blob")
    assert procedural_mesh("torus", segments=50, rings=20).num_faces == 2000
