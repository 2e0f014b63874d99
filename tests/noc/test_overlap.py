"""rtool.noc.overlap: the overlapping score on hand numbers, the settings, and resumable deterministic runs."""
import math

import pytest
import torch

from rtool.errors import UsageError
from rtool.noc.overlap import OverlapSettings, overlap_matrix, robustness, run_overlap, shapes_overlap_data
from rtool.ops import operators_loaded

# Rows: the clean model, the model trained on a, on b; columns: clean, a, b.
A = torch.tensor([[0.90, 0.45, 0.60],
                  [0.80, 0.72, 0.60],
                  [0.90, 0.54, 0.81]], dtype=torch.float64)


def test_standard_form_on_hand_numbers():
    # R_none = (1, .5, 2/3), R_a = (1, .9, .75), R_b = (1, .6, .9): gains .4 on a, 7/30 on b.
    # O(a,b) = ½[(.75 − 2/3) / (7/30) + (.6 − .5) / .4] = ½[5/14 + 1/4] = 17/56.
    O, undefined = overlap_matrix(A, "standard")
    assert undefined == ()
    assert O[0, 1].item() == pytest.approx(17 / 56, abs=1e-12)
    assert torch.equal(O, O.T)
    assert torch.allclose(torch.diagonal(O), torch.ones(2, dtype=torch.float64))
    assert torch.allclose(robustness(A)[1], torch.tensor([1.0, 0.9, 0.75], dtype=torch.float64))


def test_bmvc2021_form_uses_raw_accuracies():
    # Gains .27 on a, .21 on b; O(a,b) = ½[(.60 − .60) / .21 + (.54 − .45) / .27] = 1/6.
    O, _ = overlap_matrix(A, "bmvc2021")
    assert O[1, 0].item() == pytest.approx(1 / 6, abs=1e-12)
    assert torch.equal(robustness(A, "bmvc2021"), A)


def test_negative_overlap_is_zero_and_no_upper_clip():
    worse = A.clone()
    worse[1, 2], worse[2, 1] = 0.20, 0.10   # training on one hurts the other: negative, set to 0
    O, _ = overlap_matrix(worse, "bmvc2021")
    assert O[0, 1].item() == 0.0
    better = A.clone()
    better[1, 2], better[2, 1] = 0.95, 0.80  # transfers more than the corruption's own training: above 1
    O, _ = overlap_matrix(better, "bmvc2021")
    assert O[0, 1].item() == pytest.approx(0.5 * (0.35 / 0.21 + 0.35 / 0.27))
    assert O[0, 1].item() > 1


def test_no_gain_leaves_the_overlap_undefined():
    flat = A.clone()
    flat[2, 2] = flat[0, 2]  # training on b did not help on b
    for form in ("standard", "bmvc2021"):
        O, undefined = overlap_matrix(flat, form)
        assert undefined == (1,)
        assert math.isnan(O[0, 1].item()) and math.isnan(O[1, 1].item()) and O[0, 0].item() == 1.0


@pytest.mark.parametrize("fields, fragment", [
    ({"corruptions": ("gaussian", "snow")}, "unknown corruption 'snow'"),
    ({"corruptions": ()}, "at least one"),
    ({"corruptions": ("none", "blur")}, "'none' is the clean condition"),
    ({"corruptions": ("blur", "blur")}, "listed twice"),
    ({"epochs": 0}, "epochs=0"),
    ({"form": "paper"}, "form 'paper'"),
    ({"model": "resnet9000"}, "unknown model"),
    ({"model": "corner_convnet"}, "1-channel"),
    ({"lr": -1.0}, "lr=-1.0"),
])
def test_bad_settings_are_one_line_usage_errors(fields, fragment):
    with pytest.raises(UsageError) as error:
        OverlapSettings(**fields)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_settings_keep_the_paper_order_and_schedule():
    settings = OverlapSettings(corruptions=("hue", "quantization", "blur"), epochs=40, optimizer="sgd-step")
    assert settings.rows == ("none", "quantization", "blur", "hue")
    assert settings.milestones() == (20, 30) and settings.learning_rate == 0.1
    assert OverlapSettings(epochs=1).milestones() == ()


needs_ops = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")
TINY = dict(corruptions=("gaussian", "rotation"), epochs=1, batch_size=16, eval_batch_size=64)


@pytest.fixture(scope="module")
def tiny_data():
    return shapes_overlap_data(train_per_class=6, test_per_class=3, image_size=32, seed=0)


@needs_ops
def test_rerun_resumes_and_a_lost_file_is_recomputed_alone(tiny_data, tmp_path):
    train, test = tiny_data
    settings = OverlapSettings(**TINY)
    first = run_overlap(train, test, settings, out_dir=tmp_path)
    assert first.trained == ("none", "gaussian", "rotation") and first.evaluated == 9
    assert first.accuracy.shape == (3, 3) and first.total == 30
    assert torch.equal(first.accuracy, first.correct.double() / 30)

    again = run_overlap(train, test, settings, out_dir=tmp_path)
    assert again.trained == () and again.evaluated == 0
    assert torch.equal(again.accuracy, first.accuracy)
    assert torch.allclose(again.overlap_standard, first.overlap_standard, equal_nan=True)

    # A killed run: one model and one of its cells are missing. Only that model is retrained (to the same
    # weights: the run is seeded) and only that cell recomputed.
    model_file = next((tmp_path / "models").glob("gaussian-*.pt"))
    model_file.unlink()
    cell = next((tmp_path / "cells").glob("gaussian-*/rotation-*.json"))
    cell.unlink()
    resumed = run_overlap(train, test, settings, out_dir=tmp_path)
    assert resumed.trained == ("gaussian",) and resumed.evaluated == 1
    assert torch.equal(resumed.accuracy, first.accuracy)
    assert model_file.exists() and cell.exists()

    # Damaged files (a half-written disk, a stale format) are recomputed, never fatal.
    model_file.write_bytes(b"not a checkpoint")
    cell.write_text("{")
    with pytest.warns(UserWarning, match="retraining"):
        repaired = run_overlap(train, test, settings, out_dir=tmp_path)
    assert repaired.trained == ("gaussian",) and repaired.evaluated == 1
    assert torch.equal(repaired.accuracy, first.accuracy)

    # Another form or subset reuses the same models; other training settings do not.
    bmvc = run_overlap(train, test, OverlapSettings(**{**TINY, "form": "bmvc2021"}), out_dir=tmp_path)
    assert bmvc.trained == () and torch.allclose(bmvc.overlap, first.overlap_bmvc2021, equal_nan=True)
    subset = run_overlap(train, test, OverlapSettings(**{**TINY, "corruptions": ("rotation",)}), out_dir=tmp_path)
    assert subset.trained == () and torch.equal(subset.accuracy, first.accuracy[[0, 2]][:, [0, 2]])
    other = run_overlap(train, test, OverlapSettings(**{**TINY, "corruptions": ("rotation",), "epochs": 2}),
                        out_dir=tmp_path)
    assert other.trained == ("none", "rotation")


@needs_ops
def test_bad_data_is_a_usage_error(tiny_data):
    train, test = tiny_data
    small = shapes_overlap_data(train_per_class=1, test_per_class=1, image_size=16, seed=0)[1]
    with pytest.raises(UsageError, match="one size"):
        run_overlap(train, small, OverlapSettings(**TINY))


@needs_ops
@pytest.mark.slow
def test_torchrun_spreads_the_models_and_merges_to_the_one_process_result(tiny_data, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    job = Path(__file__).with_name("_overlap_dist_job.py")
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
                          str(job), str(tmp_path / "two.pt"), str(tmp_path / "out")],
                         env=env, capture_output=True, text=True, timeout=180)
    assert two.returncode == 0, two.stderr[-3000:]
    merged = torch.load(tmp_path / "two.pt", weights_only=True)
    assert merged["world_size"] == 2 and sorted(merged["trained"]) == ["gaussian", "none", "rotation"]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train, test = tiny_data
        alone = run_overlap(train, test, OverlapSettings(**TINY))                          # fresh, one process
        resumed = run_overlap(train, test, OverlapSettings(**TINY), out_dir=tmp_path / "out")  # the ranks' files
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(alone.correct, merged["correct"])
    assert resumed.trained == () and resumed.evaluated == 0 and torch.equal(resumed.correct, merged["correct"])
