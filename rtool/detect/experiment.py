"""`rtool.detect.run`: features, detectors and baselines for one model on a train split and a test split.

The test split is cut into a validation and a test half (a seeded random half, as the authors' CIFAR setup):
mutants are accepted on the validation half, the conductance MLP is fit on the training-set predictions, the
combiner and every threshold are chosen on validation, and all scores are measured on both halves.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn

from rtool.data import ClassificationData
from rtool.detect.conductance import ConductanceSettings
from rtool.detect.detector import COMBINED_SETTINGS, DetectorSettings
from rtool.detect.evaluation import DetectionResult, evaluate_detectors
from rtool.detect.features import Features
from rtool.detect.mutation import MutantSet, MutationSettings
from rtool.detect.sharded import sharded_features, sharded_mutants
from rtool.errors import UsageError
from rtool.models.layers import get_layer


@dataclass(frozen=True)
class DetectSettings:
    """Settings of one detect run. `layer` None = the model's TARGET_LAYER (the digits ConvNet: conv2)."""

    layer: str | None = None
    n_steps: int = 10
    method: str = "auto"
    # gamma 0.03 changes 2 of the digits ConvNet's 88 filters (the authors' 0.01 would change none there)
    mutation: MutationSettings = field(default_factory=lambda: MutationSettings(gamma=0.03))
    detector: DetectorSettings = DetectorSettings()
    # the authors' combiner layout, but 300 epochs: their 3 epochs at batch 100 are 3 Adam steps on a digits fold
    # of 90 validation rows, which leaves it at its random start (it ranked errors last in a digits run)
    combined: DetectorSettings = replace(COMBINED_SETTINGS, epochs=300)
    val_fraction: float = 0.5
    seed: int = 0
    batch_size: int = 256
    shard_size: int = 256          # inputs per resumable shard (does not change the results)

    def __post_init__(self) -> None:
        if not 0 < self.val_fraction < 1:
            raise UsageError(f"detect val_fraction {self.val_fraction!r}: expected a fraction in (0, 1)")
        for name in ("batch_size", "shard_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"detect {name} {getattr(self, name)!r}: expected an integer >= 1")

    def conductance(self, layer: str) -> ConductanceSettings:
        return ConductanceSettings(layer, n_steps=self.n_steps, method=self.method)


@dataclass(frozen=True)
class DetectExperiment:
    settings: DetectSettings
    layer: str
    mutants: MutantSet
    train: Features
    val: Features
    test: Features
    val_indices: torch.Tensor      # dataset indices of the validation half of the test split
    test_indices: torch.Tensor
    result: DetectionResult


def detect_layer(model: nn.Module, settings: DetectSettings) -> str:
    """The layer whose conductance is used: the settings', else the model's TARGET_LAYER; checked to exist."""
    layer = settings.layer if settings.layer is not None else getattr(model, "TARGET_LAYER", None)
    if layer is None:
        raise UsageError(f"{type(model).__name__} has no TARGET_LAYER; expected a layer name in the settings")
    get_layer(model, layer)
    return layer


def split_validation(test: ClassificationData, settings: DetectSettings) -> tuple[ClassificationData,
                                                                                  ClassificationData]:
    """(validation half, test half) of the test split: a seeded random cut, each half in dataset order."""
    if len(test) < 4:
        raise UsageError(f"{test.name} test split has {len(test)} samples; expected at least 4 to cut val/test")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(settings.seed))
    cut = int(round(settings.val_fraction * len(test)))
    return test.subset(order[:cut].sort().values), test.subset(order[cut:].sort().values)


def split_features(model: nn.Module, data: ClassificationData, split: str, layer: str, mutants: MutantSet,
                   settings: DetectSettings, *, out_dir=None, quiet: bool = True) -> Features | None:
    """The features of one split, sharded (see rtool.detect.sharded); None on torchrun ranks other than 0."""
    return sharded_features(model, data.images, data.labels, settings.conductance(layer), mutants,
                            data_key=data.fingerprint(), split=split, batch_size=settings.batch_size,
                            shard_size=settings.shard_size, out_dir=out_dir, quiet=quiet)


def validation_mutants(model: nn.Module, val: ClassificationData, settings: DetectSettings, *, out_dir=None,
                       quiet: bool = True) -> MutantSet:
    """The accepted mutants (on the validation half), computed once, before any features."""
    return sharded_mutants(model, val.images, val.labels, settings.mutation, data_key=val.fingerprint(),
                           out_dir=out_dir, quiet=quiet)


def run(model: nn.Module, train: ClassificationData, test: ClassificationData,
        settings: DetectSettings = DetectSettings(), *, out_dir=None, quiet: bool = True) -> DetectExperiment | None:
    """Fit and measure the detectors for `model` (train split = detector training rows, test split cut in two).

    `out_dir`: where the mutants and the feature shards are kept (a rerun resumes); None keeps nothing.
    Returns None on torchrun ranks other than 0 (they only compute their shards).
    """
    layer = detect_layer(model, settings)
    val_data, test_data = split_validation(test, settings)
    mutants = validation_mutants(model, val_data, settings, out_dir=out_dir, quiet=quiet)
    feats = [split_features(model, d, name, layer, mutants, settings, out_dir=out_dir, quiet=quiet)
             for name, d in (("train", train), ("val", val_data), ("test", test_data))]
    if any(f is None for f in feats):
        return None
    result = evaluate_detectors(*feats, settings.detector, settings.combined)
    return DetectExperiment(settings=settings, layer=layer, mutants=mutants, train=feats[0], val=feats[1],
                            test=feats[2], val_indices=val_data.indices, test_indices=test_data.indices,
                            result=result)
