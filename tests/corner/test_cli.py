"""`rtool corner` end to end on the embedded default (digits with planted mislabels), and bad input."""
import csv
import json

import pytest

from fixtures.cli import assert_one_line_error, rtool


@pytest.fixture(scope="session")
def corner_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("corner-run")
    result = rtool("--quiet", "--out", out, "corner", "run", "--models", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    return out, result


@pytest.mark.slow
def test_run_finds_the_planted_mislabels_and_compares_radii(corner_run):
    out, result = corner_run
    assert "planted mislabelled images among the corner cases: 15/15" in result.stdout
    assert "retrained - original:" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planted"]["found"] == 15 and len(summary["corner_cases"]["indices"]) == 15
    assert sorted(summary["planted"]["indices"]) == sorted(summary["corner_cases"]["indices"])
    with open(out / "models.csv", newline="") as handle:
        models = list(csv.DictReader(handle, delimiter=";"))
    assert [m["phase"] for m in models] == ["original", "original", "retrained", "retrained"]
    assert all(float(m["test_accuracy"]) > 0.9 and float(m["mean_radius"]) > 0 for m in models)
    before = sum(float(m["mean_radius"]) for m in models[:2]) / 2
    assert summary["comparison"]["mean_before"] == pytest.approx(before, abs=1e-4)
    for name in ("corner_cases.csv", "surprise.npy", "radius.png", "corner_cases.png", "report.html",
                 "radius/original_000.csv", "radius/retrained_001.csv"):
        assert (out / name).is_file(), name
    assert (out / "radius" / "original_000.csv").read_text().splitlines()[0] == "rob;pred_y"


@pytest.mark.slow
def test_dsa_and_deepfool_alone_on_the_default_model(corner_run, tmp_path):
    dsa = rtool("--quiet", "--out", tmp_path / "dsa", "corner", "dsa", "--top", "15")
    assert dsa.returncode == 0, dsa.stderr
    assert "planted mislabelled images among the 15 most surprising: 15/15" in dsa.stdout
    rows = (tmp_path / "dsa" / "surprise.csv").read_text().splitlines()
    assert rows[0] == "index;label;scored_as;score;dist_a;dist_b" and len(rows) == 1438
    deepfool = rtool("--quiet", "--out", tmp_path / "df", "corner", "deepfool", "--max-iter", "10")
    assert deepfool.returncode == 0, deepfool.stderr
    assert "on 360 test images of digits" in deepfool.stdout and "mean radius" in deepfool.stdout
    assert len((tmp_path / "df" / "radius.csv").read_text().splitlines()) == 361


@pytest.mark.parametrize("args, fragments", [
    (["run", "--corner-cases", "5000"], ["corner_cases=5000 is not smaller than the 1437 training images"]),
    (["dsa", "--trace-layer", "conv9"], ["conv9"]),
    (["dsa", "--dataset", "mnist"], ["dataset mnist needs --data-dir"]),
    (["deepfool", "--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], ["/nonexistent/mnist"]),
    (["dsa", "--knn", "5000"], ["5000"]),
])
def test_bad_input_is_one_line(args, fragments, tmp_path):
    assert_one_line_error(rtool("--quiet", "--out", tmp_path, "corner", *args), *fragments)


def test_corrupt_idx_file_is_named(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    result = rtool("--quiet", "corner", "deepfool", "--dataset", "mnist", "--data-dir", tmp_path)
    assert_one_line_error(result, "train-images-idx3-ubyte")


def test_model_whose_outputs_do_not_match_the_classes(tmp_path):
    import torch

    from rtool.models import CornerConvNet

    path = tmp_path / "five.pt"
    torch.save(CornerConvNet(num_classes=5).state_dict(), path)
    result = rtool("--quiet", "corner", "deepfool", "--model", "corner_convnet", "--weights", path)
    assert_one_line_error(result, "5 outputs", "10 classes")


def test_dsa_and_deepfool_on_a_tiny_mnist_fixture(tmp_path):
    from fixtures.classification_layout import make_mnist

    mnist = make_mnist(tmp_path / "mnist", layout="torchvision", gz=True, n_train=40, n_test=10)
    dsa = rtool("--quiet", "--out", tmp_path / "dsa", "corner", "dsa", "--dataset", "mnist", "--data-dir",
                tmp_path / "mnist", "--epochs", "1", "--knn", "3")
    assert dsa.returncode == 0, dsa.stderr
    assert "dsa3 of 40 train images of mnist" in dsa.stdout
    rows = (tmp_path / "dsa" / "surprise.csv").read_text().splitlines()
    assert len(rows) == 41 and [int(r.split(";")[1]) for r in rows[1:]] == mnist.train_labels.tolist()
    deepfool = rtool("--quiet", "--out", tmp_path / "df", "corner", "deepfool", "--dataset", "mnist", "--data-dir",
                     tmp_path / "mnist", "--epochs", "1", "--max-iter", "5")
    assert deepfool.returncode == 0, deepfool.stderr
    assert "on 10 test images of mnist" in deepfool.stdout


@pytest.mark.slow
def test_deepfool_trains_a_torchvision_model_on_cifar10(tmp_path):
    from fixtures.classification_layout import make_cifar

    make_cifar(tmp_path / "cifar", per_batch=3)
    result = rtool("--quiet", "--out", tmp_path / "df", "corner", "deepfool", "--dataset", "cifar10", "--data-dir",
                   tmp_path / "cifar", "--model", "resnet18", "--epochs", "1", "--max-iter", "3", "--shard-size", "2")
    assert result.returncode == 0, result.stderr
    assert "on 3 test images of cifar10 under resnet18 (trained here)" in result.stdout
    assert len((tmp_path / "df" / "radius.csv").read_text().splitlines()) == 4
    assert len(list((tmp_path / "df" / "shards").glob("corner-deepfool-*/*.pt"))) == 2


@pytest.mark.slow
def test_deepfool_on_an_imagenet_class_subset(tmp_path):
    from fixtures.imagenet_layout import make_imagenet_classes

    make_imagenet_classes(tmp_path / "inet", per_class=(2, 1), corrupt=False)
    result = rtool("--quiet", "--out", tmp_path / "df", "corner", "deepfool", "--dataset", "imagenet", "--data-dir",
                   tmp_path / "inet", "--model", "resnet18", "--epochs", "1", "--max-iter", "2")
    assert result.returncode == 0, result.stderr
    assert "on 3 test images of imagenet under resnet18 (trained here)" in result.stdout
