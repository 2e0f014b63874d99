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


@dataclass(frozen=True)
class FittedDetectors:
    """The fitted conductance MLP and combiners, the validation scores (the combiner's out of fold) and the
    threshold of every score (chosen on validation)."""

    conductance_detector: MLPDetector
    combined_detectors: tuple[MLPDetector, ...]
    val_scores: dict[str, torch.Tensor]
    thresholds: dict[str, float]


def _pair(feats: Features, p_cond: torch.Tensor) -> torch.Tensor:
    return torch.stack([feats.lcr.float(), p_cond.float()], 1)


def fit_detectors(train: Features, val: Features, settings: DetectorSettings = DetectorSettings(),
                  combined: DetectorSettings = COMBINED_SETTINGS) -> FittedDetectors:
    """Fit the conductance MLP on train and the combiner cross-fitted on val; thresholds of every score on val."""
    cond_mlp = fit_detector(train.conductance, train.wrong, settings)
    val_scores = {"conductance": detector_scores(cond_mlp, val.conductance), "lcr": val.lcr.double()}
    val_pair = _pair(val, val_scores["conductance"])
    wrong_val = val.wrong.numpy()
    out_of_fold = torch.zeros(len(wrong_val))
    folds = StratifiedKFold(n_splits=2, shuffle=True, random_state=combined.seed)
    models = []
    for k, (fit_rows, held_rows) in enumerate(folds.split(np.zeros(len(wrong_val)), wrong_val)):
        model = fit_detector(val_pair[fit_rows], wrong_val[fit_rows], replace(combined, seed=combined.seed + k))
        out_of_fold[held_rows] = detector_scores(model, val_pair[held_rows])
        models.append(model)
    val_scores["combined"] = out_of_fold
    val_scores.update(baseline_scores(val.logits))
    thresholds = {name: equal_recall_threshold(val_scores[name], val.wrong) for name in DETECTORS + BASELINES}
    return FittedDetectors(conductance_detector=cond_mlp, combined_detectors=tuple(models), val_scores=val_scores,
                           thresholds=thresholds)


def score_features(conductance_detector: MLPDetector, combined_detectors: tuple[MLPDetector, ...],
                   feats: Features) -> dict[str, torch.Tensor]:
    """Every detector's and baseline's score of `feats` (the combiner: the mean of its fold models)."""
    scores = {"conductance": detector_scores(conductance_detector, feats.conductance), "lcr": feats.lcr.double()}
    pair = _pair(feats, scores["conductance"])
    scores["combined"] = torch.stack([detector_scores(m, pair) for m in combined_detectors]).mean(0)
    scores.update(baseline_scores(feats.logits))
    return scores


def evaluate_detectors(train: Features, val: Features, test: Features,
                       settings: DetectorSettings = DetectorSettings(),
                       combined: DetectorSettings = COMBINED_SETTINGS) -> DetectionResult:
    """Fit the detectors (conductance MLP on train, combiner cross-fitted on val) and measure all scores."""
    fitted = fit_detectors(train, val, settings, combined)
    test_scores = score_features(fitted.conductance_detector, fitted.combined_detectors, test)
    val_metrics, test_metrics = {}, {}
    for name in DETECTORS + BASELINES:
        threshold = fitted.thresholds[name]
        val_metrics[name] = detection_metrics(fitted.val_scores[name], val.wrong, threshold)
        test_metrics[name] = detection_metrics(test_scores[name], test.wrong, threshold)
    return DetectionResult(val=val_metrics, test=test_metrics, test_scores=test_scores,
                           conductance_detector=fitted.conductance_detector,
                           combined_detectors=fitted.combined_detectors)
