"""The corner-case experiment on tiny data: phases, pairing, selection, planted truth, resume, bad input."""
from __future__ import annotations

import pytest
import torch

import rtool.corner
import rtool.engine.sharded as sharded
from rtool.corner import CornerSettings, DeepFoolConfig, compare_radii, plant_mislabels
from rtool.errors import UsageError
from fixtures.blobs import blobs

TINY = CornerSettings(models=2, corner_cases=4, epochs=2, knn=3, batch_size=64,
                      deepfool=DeepFoolConfig(max_iter=5))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    train, planted = plant_mislabels(blobs(20, "train", 0), 3, seed=1)
    test = blobs(5, "test", 2)
    out = tmp_path_factory.mktemp("corner")
    result = rtool.corner.run(train, test, TINY, out_dir=out, planted=planted)
    return train, test, planted, out, result


def test_phases_pairs_and_selection(tiny_run):
    train, test, planted, _, result = tiny_run
    assert [r.phase for r in result.original] == ["original"] * 2
    assert [r.seed for r in result.original] == [r.seed for r in result.retrained] == [0, 1]
    for run in result.original:
        assert run.surprise.shape == (len(train),) and run.radii.shape == (len(test),)
        assert run.radius.count == len(test) and 0.0 <= run.test_accuracy <= 1.0
    assert all(r.surprise is None for r in result.retrained)
    corner = result.corner
    assert len(corner.indices) == 4 and len(corner.kept) == len(train) - 4
    assert not torch.isin(corner.kept, corner.indices).any()
    # the selection is the one rtool.corner.select_corner_cases makes of the models' surprise
    again = rtool.corner.select_corner_cases(torch.stack([r.surprise for r in result.original]), 4)
    assert torch.equal(again.indices, corner.indices)
    c = result.comparison
    assert c.mean_before == pytest.approx(sum(r.radius.mean_radius for r in result.original) / 2)
    assert c.mean_difference == pytest.approx(c.mean_after - c.mean_before)
    found, total = result.planted_found()
    assert total == 3 and found == int(torch.isin(planted, corner.indices).sum())


def test_rerun_resumes_from_saved_models(tiny_run, monkeypatch):
    train, test, planted, out, first = tiny_run
    computed = []
    real = sharded.atomic_save_torch

    def counting(path, obj):
        computed.append(path)
        return real(path, obj)

    monkeypatch.setattr(sharded, "atomic_save_torch", counting)
    again = rtool.corner.run(train, test, TINY, out_dir=out, planted=planted)
    assert computed == []  # every model's stage results came from its shard
    assert torch.equal(again.corner.indices, first.corner.indices)
    assert [r.radius for r in again.retrained] == [r.radius for r in first.retrained]


def test_compare_radii_paired_tests():
    c = compare_radii([1.0, 2.0, 3.0, 4.0], [1.5, 2.4, 3.6, 4.1])
    assert c.mean_difference == pytest.approx(0.4)
    assert 0.0 < c.t_pvalue < 0.05 and c.wilcoxon_pvalue is not None
    same = compare_radii([1.0], [1.0])
    assert same.wilcoxon_pvalue is None and same.t_pvalue != same.t_pvalue  # NaN: one pair


def test_planted_mislabels_change_exactly_those_labels():
    data = blobs(10, "train", 3)
    planted, indices = plant_mislabels(data, 5, seed=4)
    changed = (planted.labels != data.labels).nonzero().flatten()
    assert torch.equal(changed, indices) and torch.equal(planted.images, data.images)
    assert planted.fingerprint() != data.fingerprint()


@pytest.mark.parametrize("settings, message", [
    (dict(models=0), "models=0: expected a positive integer"),
    (dict(variant="dsa9"), "surprise variant 'dsa9'"),
    (dict(target_labels="maybe"), "target_labels 'maybe'"),
])
def test_bad_settings_are_one_line(settings, message):
    with pytest.raises(UsageError, match=message):
        CornerSettings(**settings)


def test_more_corner_cases_than_images_is_refused():
    with pytest.raises(UsageError, match="corner_cases=100 is not smaller than the 30 training images"):
        rtool.corner.run(blobs(10, "train", 0), blobs(2, "test", 1), CornerSettings(corner_cases=100))
