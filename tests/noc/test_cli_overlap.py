"""`rtool noc overlap`: one tiny end-to-end run with its files, a resumed rerun, and one-line errors."""
import csv
import json

import pytest

from rtool.ops import operators_loaded
from fixtures.cli import run_captured as run

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")

TINY = ["noc", "overlap", "--corruptions", "rotation,gaussian", "--epochs", "1", "--batch-size", "16",
        "--train-per-class", "6", "--test-per-class", "3", "--image-size", "32"]


def test_tiny_run_writes_every_file_and_resumes(tmp_path, capsys):
    out_dir = tmp_path / "o"
    code, out, err = run(capsys, *["--quiet", "--out", str(out_dir), *TINY])
    assert code == 0, err
    assert "trained 3 this run" in out and "overlap matrix (standard form" in out
    for name in ("accuracy.csv", "overlap_standard.csv", "overlap_bmvc2021.csv", "summary.json", "report.html",
                 "accuracy.png", "overlap.png"):
        assert (out_dir / name).stat().st_size > 0, name
    with open(out_dir / "accuracy.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["trained_on", "none", "gaussian", "rotation"]  # the paper's order
    assert [r[0] for r in rows[1:]] == ["none", "gaussian", "rotation"]
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["conditions"] == ["none", "gaussian", "rotation"] and summary["test_images"] == 30
    assert len(summary["overlap"]["bmvc2021"]) == 2 and summary["trained_this_run"] == ["none", "gaussian", "rotation"]
    assert "Overlap (standard form)" in (out_dir / "report.html").read_text()

    code, again, _ = run(capsys, *["--quiet", "--out", str(out_dir), *TINY, "--form", "bmvc2021"])
    assert code == 0 and "trained 0 this run, 3 loaded" in again and "bmvc2021 form" in again
    assert json.loads((out_dir / "summary.json").read_text())["accuracy"] == summary["accuracy"]


@pytest.mark.parametrize("extra, fragment", [
    (["--corruptions", "gaussian,snow"], "unknown corruption 'snow'"),
    (["--epochs", "0"], "--epochs 0"),
    (["--corruptions", "none"], "'none' is the clean condition"),
    (["--form", "paper"], "'paper'"),
    (["--data-dir", "."], "--data-dir"),
    (["--image-size", "8"], "--image-size 8"),
    (["--model", "resnet9000"], "unknown model"),
    (["--dataset", "cifar10"], "needs --data-dir"),
    ("out-is-a-file", "is a file"),
])
def test_bad_input_is_one_line(tmp_path, capsys, extra, fragment):
    out = tmp_path / "o"
    if extra == "out-is-a-file":
        out.write_text("x")
        extra = []
    base = TINY[:-2] if extra[:1] == ["--dataset"] else TINY  # without --image-size (shapes and folder only)
    code, _, err = run(capsys, *["--quiet", "--out", str(out), *base, *extra])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("rtool: error: "), err
    assert fragment in lines[0] and "Traceback" not in err


def test_all_means_the_23_in_the_paper_order(tmp_path, capsys, monkeypatch):
    import rtool.noc.overlap as overlap
    from rtool.noc import CORRUPTIONS

    seen = {}

    def fake_run(train, test, settings, **kwargs):
        seen["settings"] = settings
        return None  # what a non-zero rank gets: nothing to write

    monkeypatch.setattr(overlap, "run_overlap", fake_run)
    code, _, err = run(capsys, *["--quiet", "--out", str(tmp_path), *TINY[:2], "--corruptions", "all", "--train-per-class", "2",
                        "--test-per-class", "1", "--epochs", "40", "--optimizer", "sgd-step"])
    assert code == 0, err
    settings = seen["settings"]
    assert settings.corruptions == CORRUPTIONS and settings.rows[0] == "none" and len(settings.rows) == 24
    assert settings.milestones() == (20, 30) and settings.learning_rate == 0.1


def test_an_imagenet_class_subset(tmp_path, capsys):
    from fixtures.imagenet_layout import make_imagenet_classes

    make_imagenet_classes(tmp_path / "inet", per_class=(3, 2), corrupt=False)
    out_dir = tmp_path / "o"
    code, out, err = run(capsys, *["--quiet", "--out", str(out_dir), "noc", "overlap", "--corruptions", "gaussian",
                          "--epochs", "1", "--batch-size", "4", "--dataset", "imagenet", "--data-dir",
                          str(tmp_path / "inet"), "--classes", "n01440764,1", "--image-size", "32"])
    assert code == 0, err
    assert "2 models (shapes_cnn, 1 epochs, 6 training images)" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["conditions"] == ["none", "gaussian"] and summary["test_images"] == 4
