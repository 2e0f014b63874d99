"""`rtool noc preview IMAGE`."""
import pytest
from PIL import Image

from rtool.ops import operators_loaded
from fixtures.cli import run_captured as run

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def test_preview_writes_one_grid(tmp_path, capsys):
    src = tmp_path / "cat.jpg"
    Image.new("RGB", (50, 40), (200, 120, 30)).save(src)
    target = tmp_path / "grid.png"
    code, out, _ = run(capsys, *["noc", "preview", str(src), "--size", "32", "--output", str(target)])
    assert code == 0 and "wrote" in out
    with Image.open(target) as grid:
        assert grid.size == (24 * 34 + 2, 3 * 34 + 2)


def test_preview_subset_and_default_out(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.new("RGB", (20, 20), (0, 90, 255)).save(src)
    code, _, _ = run(capsys, *["--out", str(tmp_path / "o"), "noc", "preview", str(src), "--keep-size",
                      "--corruptions", "rain,hue"])
    assert code == 0
    with Image.open(tmp_path / "o" / "noc" / "preview.png") as grid:
        assert grid.size == (3 * 22 + 2, 3 * 22 + 2)


@pytest.mark.parametrize("content", [None, b"not an image"])
def test_bad_image_is_one_line(tmp_path, capsys, content):
    src = tmp_path / "broken.jpg"
    if content is not None:
        src.write_bytes(content)
    code, _, err = run(capsys, *["noc", "preview", str(src)])
    assert code == 2 and err.count("\n") == 1 and "broken.jpg" in err


def test_unknown_corruption_is_one_line(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(src)
    code, _, err = run(capsys, *["noc", "preview", str(src), "--corruptions", "fog"])
    assert code == 2 and "unknown corruption 'fog'" in err and err.count("\n") == 1
