"""Features over a tiny CNN, and every detector and baseline measured on val and test."""
import math

import pytest
import torch
from torch import nn

from rtool.detect import ConductanceSettings, MutationSettings, accepted_mutants, layer_conductance
from rtool.detect.detector import DetectorSettings
from rtool.detect.evaluation import BASELINES, DETECTORS, evaluate_detectors
from rtool.detect.features import extract_features
from rtool.errors import UsageError


def tiny_cnn():
    torch.manual_seed(21)
    return nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 10, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(10, 3)).eval()


def split(model, n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    flip = torch.rand(n, generator=g) < 0.3
    return x, torch.where(flip, (y + 1) % 3, y)


def test_features_and_detectors():
    model = tiny_cnn()
    (xt, yt), (xv, yv), (xs, ys) = split(model, 60, 0), split(model, 40, 1), split(model, 40, 2)
    mutants = accepted_mutants(model, xv, yv, MutationSettings("NAI", gamma=0.125, target_mutants=5,
                                                                accept_ratio=0.0))
    cond = ConductanceSettings("3")
    train = extract_features(model, xt, yt, cond, mutants, batch_size=25)
    assert train.conductance_method == "closed_form" and train.conductance.shape == (60, 10)
    torch.testing.assert_close(train.conductance[:7], layer_conductance(model, xt[:7], cond).values)
    assert torch.equal(train.predictions, model(xt).argmax(1)) and train.wrong.any()
    assert ((train.lcr * 5).round() == train.lcr * 5).all()
    val = extract_features(model, xv, yv, cond, mutants)
    test = extract_features(model, xs, ys, cond, mutants)
    result = evaluate_detectors(train, val, test, DetectorSettings(epochs=2), DetectorSettings(
        hidden=(10, 10), epochs=2, batch_size=10, dropout_last_only=True))
    assert set(result.test) == set(DETECTORS + BASELINES) == set(result.val)
    for name, m in result.test.items():
        assert 0 <= m.auroc <= 1 and 0 <= m.cancelled <= 1 and not math.isnan(m.aurc), name
        assert m.threshold == result.val[name].threshold
        assert result.test_scores[name].shape == (40,)
    assert len(result.combined_detectors) == 2


def test_feature_errors():
    model = tiny_cnn()
    x, y = split(model, 8, 0)
    mutants = accepted_mutants(model, x, y, MutationSettings(gamma=0.125, target_mutants=1, accept_ratio=0.0))
    with pytest.raises(UsageError, match="labels"):
        extract_features(model, x, y[:3], ConductanceSettings("3"), mutants)
    with pytest.raises(UsageError, match="not found"):
        extract_features(model, x, y, ConductanceSettings("block9"), mutants)


def test_run_on_classification_data():
    from rtool.data import ClassificationData
    from rtool.detect import DetectSettings, run

    model = tiny_cnn()
    model.TARGET_LAYER = "3"

    def data(n, seed, split_name):
        x, y = split(model, n, seed)
        return ClassificationData(images=x.float(), labels=y, class_names=["a", "b", "c"], name="synthetic",
                                  split=split_name)

    settings = DetectSettings(mutation=MutationSettings(gamma=0.125, target_mutants=4, accept_ratio=0.0),
                              detector=DetectorSettings(epochs=1),
                              combined=DetectorSettings(hidden=(4, 4), epochs=1, dropout_last_only=True))
    exp = run(model, data(50, 3, "train"), data(60, 4, "test"), settings)
    assert exp.layer == "3" and len(exp.mutants.seeds) == 4
    assert len(exp.val_indices) == 30 and len(exp.test_indices) == 30
    assert set(exp.val_indices.tolist()).isdisjoint(exp.test_indices.tolist())
    assert exp.train.conductance_method == "closed_form" and set(exp.result.test) == set(DETECTORS + BASELINES)
    with pytest.raises(UsageError, match="val_fraction"):
        DetectSettings(val_fraction=1.0)
