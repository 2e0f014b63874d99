"""`rtool noc mce` end to end: the embedded default, tiny ImageNet and ImageNet-C folders, and bad input."""
from __future__ import annotations

import csv
import json
import re

import pytest

from fixtures.cli import rtool
from fixtures.imagenet_c_layout import make_imagenet_c
from fixtures.imagenet_layout import make_imagenet_val


def run_in_process(capsys, *args):
    """The CLI in this process (no interpreter start-up): (exit status, stdout, stderr)."""
    from rtool_cli.main import main

    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return stop.value.code, captured.out, captured.err


def assert_in_process_error(outcome, *fragments):
    code, _, err = outcome
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rtool: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------- the embedded default (shapes)

@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("noc-mce")
    result = rtool("--out", out, "--quiet", "noc", "mce")
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_default_run_prints_a_table_where_corruption_costs_accuracy(default_run):
    out, stdout = default_run
    assert "ImageNet-NOC (noc8" in stdout and "relative CE vs alexnet-2020" in stdout
    rows = dict(re.findall(r"^(\(clean\)|[a-z_]+)\s+([\d.]+)\s", stdout, flags=re.M))
    assert set(rows) >= {"(clean)", "shear", "rain", "hue", "quantization", "brightness", "border", "blur",
                         "vertical_artifacts"}
    clean = float(rows.pop("(clean)"))
    assert clean < 30  # the shapes CNN is a decent classifier on clean images
    errors = {name: float(v) for name, v in rows.items()}
    assert sum(errors.values()) / len(errors) > clean + 15
    assert sum(e > clean for e in errors.values()) >= 6
    match = re.search(r"clean error ([\d.]+)%, mean error under corruption ([\d.]+)%; mCE ([\d.]+)", stdout)
    assert match and float(match.group(1)) == clean
    summary = json.loads((out / "summary.json").read_text())
    assert f"{summary['mce']:.1f}" == match.group(3)
    assert summary["benchmark"] == "imagenet-noc" and summary["n_images"] == 500


def test_default_run_writes_csv_chart_and_report(default_run):
    out, _ = default_run
    with open(out / "corruptions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["corruption"] for r in rows][:2] == ["shear", "rain"] and len(rows) == 8
    assert all(0 <= float(r["error"]) <= 1 and r["n"] == "500" for r in rows)
    assert (out / "ce.png").read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "ce.png" in html and "vertical_artifacts" in html
    assert not list(out.glob(".*.tmp*"))


# ---------------------------------------------------------------- tiny ImageNet and ImageNet-C folders

def test_imagenet_folder_with_a_measured_reference(tmp_path, capsys):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    out = tmp_path / "out"
    code, _, err = run_in_process(capsys, "--out", out, "--quiet", "noc", "mce", "--dataset", "imagenet", "--data-dir", fx.root,
                   "--model", "resnet18", "--image-size", "32", "--corruptions", "blur,rain",
                   "--reference", "measure:resnet18", "--ce-form", "absolute", "--batch-size", "4")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == len(fx.images) and summary["reference"] == "measure:resnet18"
    # The same (random-init) architecture and weights as the reference: every CE is exactly 100.
    assert [r["ce"] for r in summary["corruptions"]] == [pytest.approx(100.0)] * 2


def test_imagenet_c_folder_end_to_end(tmp_path, capsys):
    fx = make_imagenet_c(tmp_path / "imagenet-c")
    out = tmp_path / "out"
    code, stdout, err = run_in_process(capsys, "--out", out, "--quiet", "noc", "mce", "--dataset", "imagenet-c",
                                       "--data-dir", fx.root, "--model", "resnet18", "--image-size", "32")
    assert code == 0, err
    assert "ImageNet-C: 2 corruptions x 5 severities, 40 images" in stdout
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["corruption"]: r for r in summary["corruptions"]}
    assert list(rows) == ["gaussian_noise", "contrast"]  # ImageNet-C's order
    for name, alexnet in (("gaussian_noise", 0.886428), ("contrast", 0.853204)):
        severities = [rows[name][f"error_s{s}"] for s in range(1, 6)]
        assert rows[name]["ce"] == pytest.approx(100 * sum(severities) / (5 * alexnet), abs=1e-9)
    assert summary["mce"] == pytest.approx((rows["gaussian_noise"]["ce"] + rows["contrast"]["ce"]) / 2)


# ---------------------------------------------------------------- bad input: one line, exit 2

def test_missing_severity_folder(tmp_path, capsys):
    fx = make_imagenet_c(tmp_path / "imagenet-c", drop_severity=("contrast", 4))
    outcome = run_in_process(capsys, "--out", tmp_path / "out", "noc", "mce", "--dataset", "imagenet-c",
                             "--data-dir", fx.root, "--model", "resnet18")
    assert_in_process_error(outcome, "contrast", "severity folder(s) 4 missing")


def test_unreadable_image_is_named(tmp_path, capsys):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False, corrupt_image=True)
    outcome = run_in_process(capsys, "--out", tmp_path / "out", "--quiet", "noc", "mce", "--dataset", "imagenet",
                             "--data-dir", fx.root, "--model", "resnet18", "--image-size", "32",
                             "--corruptions", "brightness")
    assert_in_process_error(outcome, "corrupt image", fx.corrupt_key.split("/")[-1])


@pytest.mark.parametrize("args, fragments", [
    (("--corruptions", "blur,fog"), ("unknown corruption 'fog'",)),
    (("--preset", "noc9"), ("--preset", "noc9")),
    (("--reference", "vgg-2020"), ("unknown reference 'vgg-2020'",)),
    (("--dataset", "imagenet", "--model", "resnet18"), ("--data-dir is required",)),
])
def test_bad_names_are_one_line_errors(tmp_path, capsys, args, fragments):
    # In process for speed; the subprocess contract (fixtures.cli.assert_one_line_error) is the same main().
    outcome = run_in_process(capsys, "--out", tmp_path / "out", "noc", "mce", *args)
    assert_in_process_error(outcome, *fragments)

