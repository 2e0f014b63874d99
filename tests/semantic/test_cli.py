"""`rtool semantic map` and `optim` on the embedded default (a quicker recipe patched in), and one-line errors."""
import functools

import pytest
import torch

import rtool.semantic
from fixtures.cli import run_captured as run
from fixtures.semantic_recipe import SMALL_RECIPE as SMALL


@pytest.fixture
def quick_default(monkeypatch):
    monkeypatch.setattr(rtool.semantic, "load_semantic_default",
                        functools.partial(rtool.semantic.load_semantic_default, SMALL))


def test_map_then_optim_on_the_default(tmp_path, capsys, quick_default):
    code, out, err = run(capsys, "--out", tmp_path, "semantic", "map", "--azimuth-step", "30", "--elevation-step", "20")
    assert code == 0, err
    assert "planted range" in out and (tmp_path / "map.png").is_file()
    record = torch.load(tmp_path / "map.pt", weights_only=True)
    assert record["z"].shape == (5, 12) and record["network_name"] == "semantic_default"
    code, out, err = run(capsys, "--out", tmp_path, "semantic", "optim", "--start", "115,35", "--iterations", "150",
                         "--methods", "OIR_B,naive")
    assert code == 0, err
    assert "OIR_B  start (115.0, 35.0)" in out and "IoU with planted range" in out
    iou = float(out.split("OIR_B")[1].split("planted range")[1].split()[0])
    assert iou >= 0.5
    record = torch.load(tmp_path / "optim.pt", weights_only=True)
    assert set(record) >= {"OIR_B", "naive", "initial_point"} and "OIR_W" not in record
    assert (tmp_path / "regions.png").is_file() and (tmp_path / "convergence.png").is_file()
    code, out, err = run(capsys, "semantic", "srvr", tmp_path)
    assert code == 0, err
    assert "SRVR over 1 optim.pt" in out and "OIR_B" in out and "mean" in out


@pytest.mark.parametrize("args, message", [
    (["optim", "--start", "400,20"], "outside the domain"),
    (["optim", "--start", "100"], "expected 2 value"),
    (["optim", "--methods", "OIR_X"], "method 'OIR_X' is unknown"),
    (["map", "cup", "--model", "resnet18"], "--class is required"),
    (["map", "--model", "resnet18", "--class", "3"], "MESH is required"),
    (["map", "broken.obj", "--model", "resnet18", "--class", "3"], "broken.obj"),
    (["map", "--azimuth-step", "-3"], "azimuth_step=-3"),
    (["srvr", "."], "no optim.pt under"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    (tmp_path / "broken.obj").write_text("v 0 0\nf 1 2 x\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--out", tmp_path / "out", "semantic", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def write_shapenet_layout(root, folder="bathtub", ids=("c0ffee00", "b08727e6")):
    """<root>/<class>/<id>/models/model_normalized.obj with a tetrahedron per id."""
    for k, model_id in enumerate(ids):
        path = root / folder / model_id / "models" / "model_normalized.obj"
        path.parent.mkdir(parents=True)
        path.write_text(f"v 0 0 0\nv 1 0 0\nv 0 {1 + k} 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")


def test_map_on_a_shapenet_layout_uses_the_class_mapping(tmp_path, capsys):
    write_shapenet_layout(tmp_path / "scale")
    code, out, err = run(capsys, "--out", tmp_path / "out", "semantic", "map", "--model", "resnet18",
                         "--shapenet", tmp_path / "scale", "--class-nb", "1", "--object-nb", "0",
                         "--azimuth-step", "120", "--elevation-step", "60", "--batch-size", "6")
    assert code == 0, err
    record = torch.load(tmp_path / "out" / "map.pt", weights_only=True)
    assert (record["class_nb"], record["shape_id"], record["network_name"]) == (1, "b08727e6", "resnet18")
    assert record["z"].shape == (2, 3)
    code, out, err = run(capsys, "--out", tmp_path / "out", "semantic", "map", "--model", "resnet18",
                         "--shapenet", tmp_path / "scale", "--class-nb", "1", "--object-nb", "0")
    assert code == 0 and "exists" in out  # not recomputed without --override
    code, out, err = run(capsys, "--out", tmp_path / "other", "semantic", "map", "--model", "resnet18",
                         "--shapenet", tmp_path / "scale", "--class-nb", "1", "--object-nb", "5")
    assert code == 2 and "object 5 out of range" in err


def test_one_dimensional_optim_on_the_default(tmp_path, capsys, quick_default):
    code, out, err = run(capsys, "--out", tmp_path, "semantic", "optim", "--grid", "1d", "--start", "115;300",
                         "--iterations", "50", "--grad", "fd")
    assert code == 0, err
    record = torch.load(tmp_path / "optim.pt", weights_only=True)
    assert record["initial_point"] == [[115.0], [300.0]] and record["OIR_W"]["optim_trace"][0].shape == (50, 2, 1)
