"""Detector metrics against hand computations, baselines, threshold and the MLP fit."""
import math

import numpy as np
import pytest
import torch

from rtool.detect.detector import (DetectorSettings, aurc, baseline_scores, detection_metrics, detector_scores,
                                   equal_recall_threshold, fit_detector)
from rtool.errors import UsageError


def test_metrics_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    wrong = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    m = detection_metrics(scores, wrong, threshold=0.65)
    # pairs (wrong, correct) ranked right: 5 + 5 + 4 out of 3 x 5
    assert m.auroc == pytest.approx(14 / 15)
    assert m.aupr_wrong == pytest.approx((1 + 1 + 3 / 4) / 3)
    assert m.fpr_at_95_tpr == pytest.approx(1 / 5)  # all wrong ones caught from score 0.6 down, 1 correct above
    assert m.cancelled == pytest.approx(3 / 8)
    assert m.accepted_accuracy == pytest.approx(4 / 5)
    assert m.precision_wrong == pytest.approx(2 / 3)
    assert m.recall_wrong == pytest.approx(2 / 3) and m.recall_correct == pytest.approx(4 / 5)
    # risk-coverage: most confident first (lowest score): errors only at coverage 5/8 (the 0.6) and 7/8, 8/8
    risks = [0, 0, 0, 0, 1 / 5, 1 / 6, 2 / 7, 3 / 8]
    assert aurc(scores, wrong) == pytest.approx(np.mean(risks))


def test_equal_recall_threshold():
    rng = np.random.default_rng(0)
    wrong = rng.random(400) < 0.2
    scores = rng.normal(size=400) + 1.5 * wrong
    t = equal_recall_threshold(scores, wrong)
    m = detection_metrics(scores, wrong, t)
    assert abs(m.recall_wrong - m.recall_correct) < 0.05
    assert m.recall_wrong == pytest.approx(((scores > t) & wrong).sum() / wrong.sum())


def test_baselines():
    logits = torch.tensor([[4.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    b = baseline_scores(logits)
    p = torch.softmax(logits.double(), 1)
    torch.testing.assert_close(b["max_softmax"], 1 - p.max(1).values)
    torch.testing.assert_close(b["max_logit"], torch.tensor([-4.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(b["entropy"][1], torch.tensor(math.log(3), dtype=torch.float64))
    assert b["entropy"][0] < b["entropy"][1]


def test_mlp_learns_a_separable_rule_and_is_seeded():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 6, generator=g) * torch.tensor([1, 10, 100, 1, 1, 0.01])
    wrong = (x[:, 0] + x[:, 1] / 10 > 1).long()
    settings = DetectorSettings(hidden=(16, 16), lr=1e-2, epochs=20, batch_size=32, seed=3)
    det = fit_detector(x, wrong, settings)
    scores = detector_scores(det, x)
    assert detection_metrics(scores, wrong, 0.5).auroc > 0.95
    again = detector_scores(fit_detector(x, wrong, settings), x)
    torch.testing.assert_close(scores, again)
    torch.testing.assert_close(det.shift, x.mean(0))


def test_one_line_errors():
    with pytest.raises(UsageError, match="both wrong and correct"):
        detection_metrics([0.1, 0.2], [1, 1], 0.5)
    with pytest.raises(UsageError, match="same length"):
        detection_metrics([0.1, 0.2], [1, 0, 1], 0.5)
    with pytest.raises(UsageError, match="hidden"):
        DetectorSettings(hidden=(0,))
    with pytest.raises(UsageError, match="one per row"):
        fit_detector(torch.zeros(4, 2), [0, 1])
    det = fit_detector(torch.randn(4, 2), [0, 1, 0, 1], DetectorSettings(epochs=1))
    with pytest.raises(UsageError, match=r"expected \(N, 2\)"):
        detector_scores(det, torch.zeros(3, 5))
