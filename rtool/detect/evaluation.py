"""Fit the detectors on train/val features and score them beside the baselines on val and test.

- ``conductance``: the MLP on the conductance features, fit on the training-set predictions.
- ``lcr``: the label change rate used directly as the score.
- ``combined``: the small MLP on [LCR, p_cond]. Without the authors' leakage: it is fit on validation rows (whose
  p_cond the first MLP never saw), 2-fold cross-fitted there (stratified, seeded) so that its validation scores and
  threshold are out-of-fold; its test score is the mean of the two fold models.
- baselines ``max_softmax``, ``max_logit``, ``entropy`` from the base model's logits.
Every threshold is chosen on val (equal recall on wrong and correct) and applied unchanged to test.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from rtool.detect.detector import (COMBINED_SETTINGS, DetectorSettings, Metrics, MLPDetector, baseline_scores,
                                   detection_metrics, detector_scores, equal_recall_threshold, fit_detector)
from rtool.detect.features import Features

DETECTORS = ("conductance", "lcr", "combined")
BASELINES = ("max_softmax", "max_logit", "entropy")


@dataclass(frozen=True)
class DetectionResult:
    """Metrics per score name on val and test, the test scores, and the fitted conductance MLP."""

    val: dict[str, Metrics]
    test: dict[str, Metrics]
    test_scores: dict[str, torch.Tensor]
    conductance_detector: MLPDetector
    combined_detectors: tuple[MLPDetector, ...]


def evaluate_detectors(train: Features, val: Features, test: Features,
                       settings: DetectorSettings = DetectorSettings(),
                       combined: DetectorSettings = COMBINED_SETTINGS) -> DetectionResult:
    """Fit the detectors (conductance MLP on train, combiner cross-fitted on val) and measure all scores."""
    cond_mlp = fit_detector(train.conductance, train.wrong, settings)
    val_scores = {"conductance": detector_scores(cond_mlp, val.conductance), "lcr": val.lcr.double()}
    test_scores = {"conductance": detector_scores(cond_mlp, test.conductance), "lcr": test.lcr.double()}

    def pair(feats: Features, p_cond: torch.Tensor) -> torch.Tensor:
        return torch.stack([feats.lcr.float(), p_cond.float()], 1)

    val_pair, test_pair = pair(val, val_scores["conductance"]), pair(test, test_scores["conductance"])
    wrong_val = val.wrong.numpy()
    out_of_fold = torch.zeros(len(wrong_val))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=combined.seed)
    models = []
    for k, (fit_rows, held_rows) in enumerate(folds.split(np.zeros(len(wrong_val)), wrong_val)):
        model = fit_detector(val_pair[fit_rows], wrong_val[fit_rows], replace(combined, seed=combined.seed + k))
        out_of_fold[held_rows] = detector_scores(model, val_pair[held_rows])
        models.append(model)
    val_scores["combined"] = out_of_fold
    test_scores["combined"] = torch.stack([detector_scores(m, test_pair) for m in models]).mean(0)

    val_scores.update(baseline_scores(val.logits))
    test_scores.update(baseline_scores(test.logits))
    val_metrics, test_metrics = {}, {}
    for name in DETECTORS + BASELINES:
        threshold = equal_recall_threshold(val_scores[name], val.wrong)
        val_metrics[name] = detection_metrics(val_scores[name], val.wrong, threshold)
        test_metrics[name] = detection_metrics(test_scores[name], test.wrong, threshold)
    return DetectionResult(val=val_metrics, test=test_metrics, test_scores=test_scores,
                           conductance_detector=cond_mlp, combined_detectors=tuple(models))
