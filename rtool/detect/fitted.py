"""A fitted detector as one value: what `rtool detect fit` makes, saves, and `eval`/`predict` use again.

It holds everything needed to score new inputs of the same model: the layer and settings of the features, the
accepted mutants (as seeds; regenerated from the clean weights), the conductance MLP and the combiner's fold
models (with their normalisation), the threshold of every detector and baseline (chosen on validation), and
the fingerprint of the model it was fitted on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from rtool.detect.detector import Metrics, MLPDetector, detection_metrics
from rtool.detect.evaluation import BASELINES, DETECTORS, fit_detectors, score_features
from rtool.detect.experiment import DetectSettings
from rtool.detect.features import Features
from rtool.detect.mutation import MutantSet
from rtool.errors import UsageError
from rtool.models import model_fingerprint

SCORES = DETECTORS + BASELINES


@dataclass(frozen=True)
class FittedDetector:
    settings: DetectSettings
    layer: str
    conductance_method: str          # how the features were computed ("closed_form" or an integration method)
    mutants: MutantSet
    conductance_detector: MLPDetector
    combined_detectors: tuple[MLPDetector, ...]
    thresholds: dict[str, float]     # per score name: flag (cancel) when score > threshold
    model_fingerprint: str
    val_metrics: dict[str, Metrics]  # on the validation half (the combiner's out of fold)
    identity: dict = field(default_factory=dict)  # model and dataset names, class names, image shape, counts

    def scores(self, feats: Features) -> dict[str, torch.Tensor]:
        """Every detector's and baseline's score of `feats` (higher = more likely wrong)."""
        if feats.conductance_method != self.conductance_method:
            raise UsageError(f"features computed with {feats.conductance_method}; the detector was fitted on "
                             f"{self.conductance_method} conductance")
        return score_features(self.conductance_detector, self.combined_detectors, feats)

    def decide(self, feats: Features, score: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(score (N,), accept (N,) bool = score <= its threshold) of the detector or baseline `score`."""
        check_score_name(score)
        values = self.scores(feats)[score]
        return values, values <= self.thresholds[score]

    def check_model(self, model: nn.Module, source: str = "the detector") -> None:
        """A one-line error when `model` is not the model the detector was fitted on."""
        found = model_fingerprint(model)
        if found != self.model_fingerprint:
            fitted = self.identity.get("model", "another model")
            raise UsageError(f"{source} was fitted on {fitted} (fingerprint {self.model_fingerprint}) but the "
                             f"model given has fingerprint {found}; expected the model it was fitted on "
                             f"(same --model/--weights/--dataset)")


def check_score_name(score: str) -> str:
    if score not in SCORES:
        raise UsageError(f"score {score!r}: expected one of {', '.join(SCORES)}")
    return score


def fit(train: Features, val: Features, settings: DetectSettings, layer: str, mutants: MutantSet,
        model: nn.Module, identity: dict | None = None) -> FittedDetector:
    """Fit the detectors on the train features, the combiner and every threshold on the validation features."""
    for name, feats in (("training", train), ("validation", val)):
        wrong = int(feats.wrong.sum())
        if wrong == 0 or wrong == len(feats):
            raise UsageError(f"the model makes {wrong} wrong predictions on the {len(feats)} {name} inputs; "
                             f"expected both wrong and correct ones to fit a detector (a less trained model, "
                             f"or more data)")
    if train.conductance_method != val.conductance_method:
        raise UsageError("train and validation features use different conductance methods")
    fitted = fit_detectors(train, val, settings.detector, settings.combined)
    val_metrics = {name: detection_metrics(fitted.val_scores[name], val.wrong, fitted.thresholds[name])
                   for name in SCORES}
    return FittedDetector(settings=settings, layer=layer, conductance_method=train.conductance_method,
                          mutants=mutants, conductance_detector=fitted.conductance_detector,
                          combined_detectors=fitted.combined_detectors, thresholds=dict(fitted.thresholds),
                          model_fingerprint=model_fingerprint(model), val_metrics=val_metrics,
                          identity=dict(identity or {}))


@dataclass(frozen=True)
class SplitEvaluation:
    """Every score's metrics on one labelled split, at the thresholds chosen when fitting."""

    split: str
    metrics: dict[str, Metrics]
    scores: dict[str, torch.Tensor]
    wrong: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor

    @property
    def accuracy(self) -> float:
        return float((~self.wrong).double().mean())


def evaluate(fitted: FittedDetector, feats: Features, split: str) -> SplitEvaluation:
    """Metrics of every detector and baseline of `fitted` on the labelled features of `split`."""
    wrong = int(feats.wrong.sum())
    if wrong == 0 or wrong == len(feats):
        raise UsageError(f"split {split!r}: the model makes {wrong} wrong predictions on its {len(feats)} inputs; "
                         f"expected both wrong and correct ones to measure a detector")
    scores = fitted.scores(feats)
    metrics = {name: detection_metrics(scores[name], feats.wrong, fitted.thresholds[name]) for name in SCORES}
    return SplitEvaluation(split=split, metrics=metrics, scores=scores, wrong=feats.wrong.clone(),
                           predictions=feats.predictions.clone(), labels=feats.labels.clone())
