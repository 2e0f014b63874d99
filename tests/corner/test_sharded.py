"""Traces and DeepFool radii over a dataset in resumable shards equal the unsharded computation."""
from __future__ import annotations

import pytest
import torch

import rtool.corner
import rtool.engine.sharded as sharded
from rtool.corner import DeepFoolConfig, activation_traces, dataset_radius, dataset_traces, robustness_radius
from rtool.data import ClassificationData
from rtool.models import build_corner_model

CONFIG = DeepFoolConfig(max_iter=6)


@pytest.fixture(scope="module")
def data_and_model():
    gen = torch.Generator().manual_seed(3)
    images = torch.rand(23, 1, 28, 28, generator=gen)
    labels = torch.arange(23) % 10
    data = ClassificationData(images, labels, [str(i) for i in range(10)], "noise", "test")
    return data, build_corner_model(data, seed=4).eval()


def _counting(monkeypatch) -> list:
    saved = []
    real = sharded.atomic_save_torch
    monkeypatch.setattr(sharded, "atomic_save_torch", lambda path, obj: (saved.append(path), real(path, obj))[1])
    return saved


def test_traces_in_shards_equal_one_pass_and_resume(data_and_model, tmp_path, monkeypatch):
    data, model = data_and_model
    whole = activation_traces(model, data.images, ("conv2", "logits"), labels=data.labels, batch_size=4)
    saved = _counting(monkeypatch)
    sharded_traces = dataset_traces(model, data, ("conv2", "logits"), batch_size=4, device="cpu", out_dir=tmp_path,
                                    shard_size=8)
    assert len(saved) == 3  # 23 images in shards of 8
    assert torch.equal(sharded_traces.values, whole.values)
    assert torch.equal(sharded_traces.predictions, whole.predictions)
    assert torch.equal(sharded_traces.labels, data.labels) and sharded_traces.widths == whole.widths
    saved.clear()
    again = dataset_traces(model, data, ("conv2", "logits"), batch_size=4, device="cpu", out_dir=tmp_path,
                           shard_size=8)
    assert saved == [] and torch.equal(again.values, whole.values)


def test_radius_in_shards_equals_one_pass_and_resumes(data_and_model, tmp_path, monkeypatch):
    data, model = data_and_model
    whole = robustness_radius(model, data.images, CONFIG, batch_size=4, quiet=True)
    saved = _counting(monkeypatch)
    parts = dataset_radius(model, data, CONFIG, batch_size=4, device="cpu", out_dir=tmp_path, shard_size=8)
    assert len(saved) == 3
    for name in ("radius", "rho", "iterations", "converged", "label", "final_label"):
        assert torch.equal(getattr(parts, name), getattr(whole, name)), name
    saved.clear()
    again = dataset_radius(model, data, CONFIG, batch_size=4, device="cpu", out_dir=tmp_path, shard_size=8)
    assert saved == [] and torch.equal(again.radius, whole.radius)
    # another configuration never reuses these shards
    other = dataset_radius(model, data, DeepFoolConfig(max_iter=2), batch_size=4, device="cpu", out_dir=tmp_path,
                           shard_size=8)
    assert len(saved) == 3 and other.iterations.max() <= 2


def test_dataset_surprise_in_shards_equals_the_direct_scores(data_and_model, tmp_path):
    data, model = data_and_model
    settings = rtool.corner.CornerSettings(knn=2, batch_size=4)
    result = rtool.corner.dataset_surprise(model, data, None, settings, out_dir=tmp_path, shard_size=5)
    traces = activation_traces(model, data.images, ("logits",), labels=data.labels, batch_size=4)
    direct = rtool.corner.surprise_scores(traces, traces, "dsa3", k=2, reference_labels="true",
                                          target_labels="true", num_classes=10)
    assert torch.allclose(result.scores, direct.scores, equal_nan=True)
