"""`rtool semantic render MESH|NAME`: writes a PNG grid of views; bad input is one line and exit 2."""
import subprocess
import sys

import pytest
from PIL import Image

from rtool_cli.main import main

RTOOL = [sys.executable, "-m", "rtool_cli.main"]


def run_in_process(capsys, *args):
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return stop.value.code, captured.out, captured.err


def test_render_procedural_grid_end_to_end(tmp_path):
    result = subprocess.run([*RTOOL, "--device", "cpu", "--out", str(tmp_path / "out"), "semantic",
                             "render", "cup", "--image-size", "32", "--azimuths", "0,90,180", "--elevations", "10,40"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    png = tmp_path / "out" / "render_cup.png"
    assert png.is_file() and "rendered 6 views of cup" in result.stdout
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > image.height > 100


def test_render_obj_to_chosen_file(tmp_path, capsys):
    obj = tmp_path / "quad.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")
    code, out, err = run_in_process(capsys, "semantic", "render", obj, "--image-size", "16", "--azimuths", "0,30",
                                    "--elevations", "0", "--output", tmp_path / "grid.png")
    assert code == 0, err
    assert (tmp_path / "grid.png").is_file() and "rendered 2 views of quad" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "quad.obj"]  # no temporary left behind


@pytest.mark.parametrize("args, fragment", [
    (["blob"], "not an OBJ file and not a procedural mesh"),
    (["missing.obj"], "cannot read the OBJ file"),
    (["cube", "--elevations", "90"], "strictly between -90 and 90"),
    (["cube", "--azimuths", "a,b"], "--azimuths 'a,b'"),
])
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_in_process(capsys, "semantic", "render", *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rtool: error: ") and fragment in lines[0], err


def test_corrupt_obj_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 nan 0\n")
    code, _, err = run_in_process(capsys, "semantic", "render", bad)
    assert code == 2 and f"{bad}:2: vertex" in err and len(err.strip().splitlines()) == 1
