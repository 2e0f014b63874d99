"""`rtool semantic maps`: many objects, one resumable shard each, per-class averages and the data semantic map."""
from __future__ import annotations

import functools
import subprocess

import pytest
import torch

import rtool.engine.sharded as sharded
import rtool.semantic
from rtool.semantic import MapSettings, ObjectSpec, ViewPreprocess, object_maps, semantic_map, shapenet_objects
from rtool.semantic.views import ViewScore
from fixtures.cli import assert_one_line_error
from fixtures.semantic_recipe import SMALL_RECIPE
from fixtures.cli import run_captured as run

COARSE = MapSettings(azimuth_step=60, elevation_step=45, views_per_batch=8)


def write_shapenet_layout(root, folders=("bathtub", "03001627"), ids=("c0ffee00", "b08727e6")):
    """<root>/<class>/<id>/models/model_normalized.obj with a tetrahedron per id (a class by name or synset)."""
    for folder in folders:
        for k, model_id in enumerate(ids):
            path = root / folder / model_id / "models" / "model_normalized.obj"
            path.parent.mkdir(parents=True)
            path.write_text(f"v 0 0 0\nv 1 0 0\nv 0 {1 + k} 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()


def test_each_object_is_its_own_map_and_the_averages_are_their_means(small_net, tmp_path, monkeypatch):
    objects = [ObjectSpec("procedural:chair", 0, "chair", "chair"), ObjectSpec("procedural:mug", 1, "mug", "mug"),
               ObjectSpec("procedural:cube", 0, "chair", "cube")]
    preprocess = ViewPreprocess(32)
    saved = []
    real = sharded.atomic_save_torch
    monkeypatch.setattr(sharded, "atomic_save_torch", lambda path, obj: (saved.append(path), real(path, obj))[1])
    result = object_maps(small_net, objects, preprocess, COARSE, network_name="tiny", out_dir=tmp_path)
    assert len(saved) == 3 and result.groups() == ["chair", "mug"]
    alone = semantic_map(ViewScore(small_net, objects[1].load(), 1, preprocess, batch_size=8), COARSE)
    assert torch.equal(result.maps[1].scores, alone.scores)
    assert torch.allclose(result.class_average("chair").scores, (result.maps[0].scores + result.maps[2].scores) / 2)
    assert torch.allclose(result.data_map().scores, torch.stack([m.scores for m in result.maps]).mean(0))
    saved.clear()
    again = object_maps(small_net, objects, preprocess, COARSE, network_name="tiny", out_dir=tmp_path)
    assert saved == [] and all(torch.equal(a.scores, b.scores) for a, b in zip(again.maps, result.maps))
    more = object_maps(small_net, objects + [ObjectSpec("procedural:mug", 1, "mug", "mug2")], preprocess, COARSE,
                       network_name="tiny", out_dir=tmp_path)
    assert len(saved) == 4 and len(more.maps) == 4  # a new object list is a new job


def test_shapenet_objects_take_the_class_mapping(tmp_path):
    write_shapenet_layout(tmp_path)
    objects = shapenet_objects(tmp_path, [1, 4], max_objects=1)
    assert [(o.group, o.true_class, o.shape_id) for o in objects] == [("bathtub", 435, "b08727e6"),
                                                                       ("chair", 559, "b08727e6")]


@pytest.mark.slow
def test_cli_on_the_default_and_on_a_shapenet_layout(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(rtool.semantic, "load_semantic_default",
                        functools.partial(rtool.semantic.load_semantic_default, SMALL_RECIPE))
    out = tmp_path / "default"
    code, stdout, stderr = run(capsys, "--quiet", "--out", out, "semantic", "maps", "--azimuth-step", "30",
                               "--elevation-step", "20")
    assert code == 0, stderr
    assert "1 objects of 1 classes under semantic_default" in stdout and "planted range" in stdout
    for name in ("maps/chair/chair.pt", "class_chair.pt", "class_chair.png", "data_map.pt", "data_map.png",
                 "curves.png", "summary.csv"):
        assert (out / name).is_file(), name
    record = torch.load(out / "maps" / "chair" / "chair.pt", weights_only=True)
    assert record["z"].shape == (5, 12) and record["shape_id"] == "chair"

    write_shapenet_layout(tmp_path / "scale")
    code, stdout, stderr = run(capsys, "--quiet", "--out", tmp_path / "sn", "semantic", "maps", "--model", "resnet18",
                               "--shapenet", tmp_path / "scale", "--grid", "1d", "--azimuth-step", "120",
                               "--batch-size", "6")
    assert code == 0, stderr
    assert "4 objects of 2 classes under resnet18" in stdout
    rows = (tmp_path / "sn" / "summary.csv").read_text().splitlines()
    assert rows[0] == "group;shape_id;true_class;mean;max;share_above_half" and len(rows) == 1 + 4 + 2 + 1
    assert torch.load(tmp_path / "sn" / "class_chair.pt", weights_only=True)["z"].shape == (1, 3)


@pytest.mark.parametrize("args, fragments", [
    (["--model", "resnet18"], ["--model needs --shapenet ROOT"]),
    (["--shapenet", "/nonexistent"], ["--shapenet and --weights need --model"]),
    (["--model", "resnet18", "--shapenet", "/nonexistent/sn"], ["/nonexistent/sn", "is not a folder"]),
])
def test_bad_input_is_one_line(args, fragments, tmp_path, capsys):
    code, stdout, stderr = run(capsys, "--quiet", "--out", tmp_path, "semantic", "maps", *args)
    assert_one_line_error(subprocess.CompletedProcess([], code, stdout, stderr), *fragments)
