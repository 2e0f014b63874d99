"""`rtool detect fit` -> `eval` -> `predict` end to end on the embedded digits default at tiny settings, and bad
input as one-line errors."""
import csv
import json
import sys

import pytest
import torch

from fixtures.cli import assert_one_line_error
from fixtures.detect_run import MODEL, TINY, default_model, run_inprocess


@pytest.mark.slow
def test_fit_prints_mutants_and_validation_table(fitted_run):
    text = fitted_run.fit.stdout
    assert "1437 training, 180 validation and 180 test images" in text and "layer conv2" in text
    assert "mutants: 3 NAI (gamma 0.03) accepted" in text
    for name in ("conductance", "lcr", "combined", "max_softmax", "max_logit", "entropy", "AUROC"):
        assert name in text
    assert (fitted_run.out / "detector.pt").is_file()
    shards = list((fitted_run.out / "shards").iterdir())
    assert any(p.name.startswith("detect-train-") for p in shards)
    assert any(p.name.startswith("detect-mutants-") for p in shards)


@pytest.mark.slow
def test_eval_writes_metrics_figures_and_report(fitted_run):
    out = fitted_run.out
    assert "test half of the test split of digits: 180 images" in fitted_run.eval.stdout
    assert "catches" in fitted_run.eval.stdout and "Best baseline" in fitted_run.eval.stdout
    rows = list(csv.DictReader((out / "metrics.csv").read_text().splitlines(), delimiter=";"))
    assert [r["score"] for r in rows] == ["conductance", "lcr", "combined", "max_softmax", "max_logit", "entropy"]
    for row in rows:
        assert 0 <= float(row["auroc"]) <= 1 and 0 <= float(row["cancelled"]) <= 1
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["split"] == "test" and summary["images"] == 180 and summary["mutants"]["accepted"] == 3
    assert summary["metrics"]["combined"]["auroc"] == pytest.approx(float(rows[2]["auroc"]), abs=1e-6)
    for name in ("roc.png", "risk_coverage.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert 'src="roc.png"' in html and 'src="risk_coverage.png"' in html and "max_softmax" in html


@pytest.mark.slow
def test_predict_rows_match_the_model(fitted_run):
    from rtool.detect.experiment import split_validation
    from rtool.detect.saved import load_detector

    rows = list(csv.DictReader((fitted_run.out / "predictions.csv").read_text().splitlines(), delimiter=";"))
    data, model = default_model()
    fitted = load_detector(fitted_run.out / "detector.pt")
    _, test = split_validation(data.test, fitted.settings)
    assert [int(r["image"]) for r in rows] == test.indices.tolist()
    with torch.no_grad():
        predictions = model(test.images).argmax(1)
    assert [int(r["prediction"]) for r in rows] == predictions.tolist()
    assert [int(r["label"]) for r in rows] == test.labels.tolist()
    cancelled = sum(r["accept"] == "0" for r in rows)
    assert f"{cancelled} of 180 predictions cancelled by combined" in fitted_run.predict.stdout
    for r in rows:
        assert (float(r["score"]) <= fitted.thresholds["combined"] + 1e-6) == (r["accept"] == "1")


@pytest.mark.slow
def test_predict_a_folder_of_images(fitted_run, tmp_path):
    from PIL import Image

    data, model = default_model()
    folder = tmp_path / "new"
    (folder / "sub").mkdir(parents=True)
    quantised = (data.test.images[:4] * 255).round()
    for i in range(4):
        Image.fromarray(quantised[i, 0].byte().numpy()).save(folder / ("sub" if i % 2 else "") / f"img{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    result = run_inprocess("--quiet", "--out", tmp_path / "out", "detect", "predict", *MODEL, "--images", folder,
                           "--score", "lcr", "--detector", fitted_run.out / "detector.pt")
    assert result.returncode == 0, result.stderr
    assert "1 unreadable files skipped" in result.stdout
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").read_text().splitlines(), delimiter=";"))
    assert [r["image"] for r in rows] == ["img0.png", "img2.png", "sub/img1.png", "sub/img3.png"]
    with torch.no_grad():
        expected = model(quantised[[0, 2, 1, 3]] / 255).argmax(1).tolist()
    assert [int(r["prediction"]) for r in rows] == expected
    assert "label" not in rows[0]


@pytest.mark.slow
def test_export_gives_the_conductance_decisions(fitted_run, tmp_path):
    from rtool.detect.experiment import split_features, split_validation
    from rtool.detect.saved import load_detector

    target = tmp_path / "detector.jit.pt"
    result = run_inprocess("--quiet", "--out", fitted_run.out, "detect", "export", *MODEL, "--output", target)
    assert result.returncode == 0, result.stderr
    assert "right conductance, 2 steps" in result.stdout
    data, model = default_model()
    fitted = load_detector(fitted_run.out / "detector.pt")
    _, test = split_validation(data.test, fitted.settings)
    feats = split_features(model, test, "test", fitted.layer, fitted.mutants, fitted.settings, out_dir=fitted_run.out)
    scores, accept = fitted.decide(feats, "conductance")
    prediction, score, accepted = torch.jit.load(str(target))(test.images)
    assert torch.equal(prediction, feats.predictions)
    torch.testing.assert_close(score, scores.float(), atol=1e-5, rtol=1e-4)
    near = (scores - fitted.thresholds["conductance"]).abs() < 1e-5
    assert torch.equal(accepted[~near], accept[~near])


def test_bad_layer_is_one_line(tmp_path):
    result = run_inprocess("--quiet", "--out", tmp_path, "detect", "fit", *TINY, "--layer", "conv9")
    assert_one_line_error(result, "conv9", "not found")
    assert not (tmp_path / "shards").exists()  # rejected before any work


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    (b"\x00 this is not a torch file", "cannot be read"),
    ("dict", "not an rtool detector"),
])
def test_missing_or_corrupt_detector_file(tmp_path, content, fragment):
    path = tmp_path / "detector.pt"
    if content == "dict":
        torch.save({"weights": torch.zeros(3)}, path)
    elif content is not None:
        path.write_bytes(content)
    result = run_inprocess("--quiet", "--out", tmp_path, "detect", "eval", *MODEL, "--detector", path)
    assert_one_line_error(result, str(path), fragment)


@pytest.mark.slow
def test_detector_from_another_model(fitted_run, tmp_path):
    from rtool.models import CornerConvNet

    weights = tmp_path / "other.pt"
    torch.manual_seed(3)
    torch.save(CornerConvNet().state_dict(), weights)
    result = run_inprocess("--quiet", "--out", tmp_path, "detect", "eval", "--model", "corner_convnet",
                           "--weights", weights, "--detector", fitted_run.out / "detector.pt")
    assert_one_line_error(result, "detector.pt", "fitted on corner_convnet", "fingerprint")


def test_missing_image_folder(tmp_path):
    result = run_inprocess("--quiet", "--out", tmp_path, "detect", "predict", "--images", tmp_path / "nope")
    assert_one_line_error(result, "nope", "no such directory")


def test_help_lists_the_subcommands():
    result = run_inprocess("detect", "--help")
    assert result.returncode == 0
    for name in ("fit", "eval", "predict", "export"):
        assert name in result.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_classes_apply_to_imagenet_only(tmp_path):
    result = run_inprocess("--quiet", "--out", tmp_path, "detect", "fit", "--classes", "n01440764")
    assert_one_line_error(result, "--classes applies to --dataset imagenet, not digits")
