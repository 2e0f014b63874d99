"""`rtool score` end to end: the embedded default finds what was planted; real layouts run; bad input is one line."""
import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from fixtures.cli import RTOOL, assert_one_line_error, rtool
from fixtures.imagenet_layout import make_imagenet_val
from fixtures.voc_layout import make_voc

def read_classes(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter=";"))


# ---------------------------------------------------------------- the embedded default (shapes)

@pytest.fixture(scope="session")
def shapes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes-score")
    result = rtool("--quiet", "--out", out, "score", "--probe-all")
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result


@pytest.mark.slow
def test_default_run_ranks_the_planted_classes_lowest(shapes_run):
    out, result = shapes_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planted"]["classes"] == [1, 4, 7]
    assert summary["planted"]["ranked_lowest"] is True
    # CRS < 0.3 or the lowest 2.5% of classes: exactly the planted ones here
    assert sorted(summary["flagged"]) == [1, 4, 7]
    assert "planted classes (1 square, 4 cross, 7 diamond) ranked lowest: yes" in result.stdout
    rows = read_classes(out / "classes.csv")
    assert list(rows[0])[:4] == ["id", "acc", "crs", "name"]
    assert len(rows) == 10
    crs = {int(r["id"]): float(r["crs"]) for r in rows}
    lowest_unplanted = min(v for k, v in crs.items() if k not in (1, 4, 7))
    assert max(crs[k] for k in (1, 4, 7)) < lowest_unplanted


@pytest.mark.slow
def test_probe_confirms_the_planted_cue(shapes_run):
    out, _ = shapes_run
    rows = {int(r["id"]): r for r in read_classes(out / "classes.csv")}
    planted = [float(rows[k]["probe_top1"]) for k in (1, 4, 7)]
    others = [float(rows[k]["probe_top1"]) for k in rows if k not in (1, 4, 7)]
    # With the object hidden, a cue-driven class is still recognised; a shape-driven one is not.
    assert min(planted) >= 0.8
    assert sum(others) / len(others) < 0.5


@pytest.mark.slow
def test_default_run_writes_the_report(shapes_run):
    out, _ = shapes_run
    for name in ("classes.csv", "images.csv", "summary.json", "report.html", "crs.png"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "overlays").glob("*.png"))
    assert (out / "classes.csv").read_bytes().count(b"\r\n") == 11  # header + 10 classes, authors' CRLF
    images = list(csv.DictReader(open(out / "images.csv", newline=""), delimiter=";"))
    assert len(images) == 500


# ---------------------------------------------------------------- real layouts on tiny fixtures

def score_fixture(out, *args):
    return rtool("--quiet", "--device", "cpu", "--out", out, "score", "--model", "resnet18", "--image-size", "64",
                 "--overlays", "1", *args)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["folders", "flat"])
def test_imagenet_layouts_end_to_end(tmp_path, layout):
    fx = make_imagenet_val(tmp_path / "imagenet", layout=layout)
    args = ["--dataset", "imagenet", "--data-dir", fx.root, "--parity"]
    if fx.bbox_dir is not None:
        args += ["--bbox-dir", fx.bbox_dir]
    result = score_fixture(tmp_path / "out", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_classes(tmp_path / "out" / "classes.csv")
    assert sorted(int(r["id"]) for r in rows) == sorted({image.label for image in fx.images})
    names = {int(r["id"]): r["name"] for r in rows}
    assert names[0] == "tench___Tinca_tinca"
    for row in rows:
        assert 0.0 <= float(row["crs"]) <= 1.0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["images"] == len(fx.images)
    assert summary["counts"]["skipped"] == len(fx.skipped)


@pytest.mark.slow
def test_voc_end_to_end(tmp_path):
    fx = make_voc(tmp_path / "voc")
    result = score_fixture(tmp_path / "out", "--dataset", "voc", "--data-dir", fx.devkit, "--num-classes", "20")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["counts"]["images"] == len(fx.pairs)
    assert summary["config"]["saliency_options"]["weight"] == "sigmoid"


# ---------------------------------------------------------------- bad input: one line, exit 2, nothing lost

def test_missing_data_dir(tmp_path):
    result = rtool("--out", tmp_path / "out", "score", "--dataset", "imagenet", "--data-dir", tmp_path / "nope",
                   "--model", "resnet18")
    assert_one_line_error(result, str(tmp_path / "nope"))


def test_dataset_needs_a_model_and_a_dir(tmp_path):
    assert_one_line_error(rtool("score", "--dataset", "voc", "--model", "resnet18"), "--data-dir is required")
    assert_one_line_error(rtool("score", "--dataset", "folder", "--data-dir", tmp_path), "--model is required")


def test_unknown_model_and_layer(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    common = ["score", "--dataset", "imagenet", "--data-dir", fx.root, "--bbox-dir", fx.bbox_dir]
    assert_one_line_error(rtool(*common, "--model", "resnet19"), "resnet19", "resnet18")
    assert_one_line_error(rtool(*common, "--model", "resnet18", "--layer", "layer4.9.conv2"), "layer4.9.conv2")


def test_unavailable_weights_say_which_file(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    env_home = {"TORCH_HOME": str(tmp_path / "torch-home")}
    result = subprocess.run([*RTOOL, "score", "--dataset", "imagenet", "--data-dir", str(fx.root), "--bbox-dir",
                             str(fx.bbox_dir), "--model", "resnet18", "--weights", "DEFAULT"],
                            capture_output=True, text=True, env={**os.environ, **env_home}, timeout=300)
    assert_one_line_error(result, "resnet18-", str(tmp_path / "torch-home"))


def test_model_with_too_few_outputs(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)  # includes basketball, class 430
    result = score_fixture(tmp_path / "out", "--dataset", "imagenet", "--data-dir", fx.root, "--bbox-dir",
                           fx.bbox_dir, "--num-classes", "10")
    assert_one_line_error(result, "10 outputs", "430")


def test_corrupt_image_is_named_and_earlier_results_survive(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False, corrupt_image=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / "classes.csv").write_text("an earlier complete result\n")
    result = score_fixture(out, "--dataset", "imagenet", "--data-dir", fx.root, "--bbox-dir", fx.bbox_dir)
    assert_one_line_error(result, "corrupt image", Path(fx.corrupt_key).name)
    assert (out / "classes.csv").read_text() == "an earlier complete result\n"
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_parity_rejects_approximations():
    assert_one_line_error(rtool("score", "--parity", "--precision", "bf16"), "--parity")


@pytest.mark.parametrize("method", ["gradcampp", "smoothgradcampp"])
def test_other_saliency_methods_run_end_to_end(tmp_path, method):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    result = rtool("--quiet", "--out", tmp_path / "out", "score", "--dataset", "imagenet", "--data-dir", fx.root,
                   "--bbox-dir", fx.bbox_dir, "--model", "shapes_cnn", "--num-classes", "1000", "--image-size", "64",
                   "--saliency", method, "--parity", "--overlays", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["method"] == method
    assert summary["counts"]["images"] == len(fx.images)
    rows = read_classes(tmp_path / "out" / "classes.csv")
    assert all(0.0 <= float(r["crs"]) <= 1.0 for r in rows)
