"""The saved detector: plain data, reloads to identical scores; feature shards resume; one-line errors for bad files."""
import csv

import pytest
import torch
from torch import nn

from fixtures.detect_run import TINY, default_model, run_inprocess
from rtool.detect import MutationSettings, extract_features
from rtool.detect.conductance import ConductanceSettings
from rtool.detect.experiment import split_features, split_validation
from rtool.detect.saved import load_detector, save_detector
from rtool.detect.sharded import sharded_features, sharded_mutants
from rtool.errors import UsageError
from rtool.models import model_fingerprint


@pytest.mark.slow
def test_reload_gives_identical_scores_and_decisions(fitted_run, tmp_path):
    data, model = default_model()
    fitted = load_detector(fitted_run.out / "detector.pt")
    assert fitted.layer == "conv2" and len(fitted.mutants.seeds) == 3
    assert fitted.model_fingerprint == model_fingerprint(model)
    _, test = split_validation(data.test, fitted.settings)
    feats = split_features(model, test, "test", fitted.layer, fitted.mutants, fitted.settings, out_dir=fitted_run.out)
    again = load_detector(save_detector(fitted, tmp_path / "copy.pt"))
    first, second = fitted.scores(feats), again.scores(feats)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert again.thresholds == fitted.thresholds and again.settings == fitted.settings
    assert again.mutants == fitted.mutants and again.identity == fitted.identity
    rows = list(csv.DictReader((fitted_run.out / "predictions.csv").read_text().splitlines(), delimiter=";"))
    scores, accept = again.decide(feats, "combined")
    assert [float(r["score"]) for r in rows] == pytest.approx(scores.tolist(), abs=1e-6)
    assert [r["accept"] == "1" for r in rows] == accept.tolist()


@pytest.mark.slow
def test_file_is_plain_data(fitted_run):
    record = torch.load(fitted_run.out / "detector.pt", weights_only=True)
    assert record["format"] == "rtool-detect" and record["version"] == 1
    assert set(record["thresholds"]) == {"conductance", "lcr", "combined", "max_softmax", "max_logit", "entropy"}
    assert record["settings"]["mutation"]["target_mutants"] == 3 and record["settings"]["n_steps"] == 2
    assert record["identity"]["image_shape"] == [1, 28, 28] and len(record["mutants"]["seeds"]) == 3


@pytest.mark.slow
def test_second_fit_reuses_every_shard(fitted_run, monkeypatch):
    before = load_detector(fitted_run.out / "detector.pt")

    def no_work(*args, **kwargs):
        raise AssertionError("recomputed instead of reusing a shard")

    monkeypatch.setattr("rtool.detect.sharded.extract_features", no_work)
    monkeypatch.setattr("rtool.detect.sharded.accepted_mutants", no_work)
    result = run_inprocess("--quiet", "--out", fitted_run.out, "detect", "fit", *TINY)
    assert result.returncode == 0, result.stderr
    after = load_detector(fitted_run.out / "detector.pt")
    assert after.thresholds == before.thresholds and after.mutants == before.mutants


def tiny_cnn():
    torch.manual_seed(21)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 10, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(90, 3)).eval()


def test_shards_resume_and_merge_like_one_pass(tmp_path, monkeypatch):
    model = tiny_cnn()
    x = torch.randn(23, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    y = torch.arange(23) % 3
    settings = MutationSettings(gamma=0.125, target_mutants=4, accept_ratio=0.0)
    mutants = sharded_mutants(model, x, y, settings, data_key="x", out_dir=tmp_path)
    cond = ConductanceSettings("3", n_steps=3)
    sharded = sharded_features(model, x, y, cond, mutants, data_key="x", split="s", shard_size=7, out_dir=tmp_path)
    whole = extract_features(model, x, y, cond, mutants)
    assert sharded.conductance_method == whole.conductance_method == "right"
    torch.testing.assert_close(sharded.conductance, whole.conductance)
    assert torch.equal(sharded.lcr, whole.lcr) and torch.equal(sharded.predictions, whole.predictions)
    assert len(list(tmp_path.glob("shards/detect-s-*/*.pt"))) == 4

    def no_work(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr("rtool.detect.sharded.extract_features", no_work)
    monkeypatch.setattr("rtool.detect.sharded.accepted_mutants", no_work)
    assert sharded_mutants(model, x, y, settings, data_key="x", out_dir=tmp_path) == mutants
    again = sharded_features(model, x, y, cond, mutants, data_key="x", split="s", shard_size=7, out_dir=tmp_path)
    assert torch.equal(again.conductance, sharded.conductance) and torch.equal(again.lcr, sharded.lcr)
    with pytest.raises(AssertionError, match="recomputed"):  # other settings: another job, not these shards
        sharded_features(model, x, y, ConductanceSettings("3", n_steps=4), mutants, data_key="x", split="s",
                         shard_size=7, out_dir=tmp_path)


@pytest.mark.parametrize("record, fragment", [
    ({"format": "rtool-detect", "version": 1, "layer": "conv2"}, "incomplete or damaged"),
    ({"format": "rtool-detect", "version": 99}, "format version 99"),
    ([1, 2, 3], "not an rtool detector"),
])
def test_bad_records_are_one_line_errors(tmp_path, record, fragment):
    path = tmp_path / "bad.pt"
    torch.save(record, path)
    with pytest.raises(UsageError, match=fragment) as caught:
        load_detector(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.slow
def test_torchrun_two_ranks_fit_the_same_detector(fitted_run, tmp_path):
    import os
    import subprocess
    import sys

    # (fitted_run has trained and cached the model.) Both runs at one thread a process: oneDNN's float32 results
    # depend on the thread count (the thresholds' last bits moved between 1 and 2), not on the split over ranks.
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    out, reference = tmp_path / "multi", tmp_path / "single"
    cli = ["-m", "rtool_cli.main", "--quiet", "--device", "cpu", "--out"]
    single_run = subprocess.run([sys.executable, *cli, str(reference), "detect", "fit", *TINY], capture_output=True,
                                text=True, timeout=600, env=one_thread)
    assert single_run.returncode == 0, single_run.stdout + single_run.stderr
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               *cli, str(out), "detect", "fit", *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=one_thread)
    assert result.returncode == 0, result.stdout + result.stderr
    single, multi = load_detector(reference / "detector.pt"), load_detector(out / "detector.pt")
    assert multi.thresholds == single.thresholds and multi.mutants == single.mutants
    assert multi.val_metrics == single.val_metrics
    assert len(list((out / "shards").glob("detect-train-*/*.pt"))) == 3  # 1437 images in shards of 500
