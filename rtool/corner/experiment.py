"""The corner-case experiment of spec §D: does removing corner cases from the training data make a model more
robust?

1. original phase: train M models (seeds seed..seed+M-1) → DeepFool robustness radius on the test set →
   surprise (DSA3 of the logits by default) of every training image under each model;
2. select the k training images most often among each model's k most surprising (spec §A.6, deterministic);
3. retrain phase: train M models on the training set without them (the same seeds, so each retrained model is
   paired with its original) → radius again;
4. compare the two phases' mean radii (paired tests from scipy).

Every model's stage results are one resumable shard (`rtool.engine.run_sharded`), and the trained weights sit in
the model cache, so an interrupted run resumes where it stopped; under torchrun the models of a phase are split
over the ranks and rank 0 merges, the same result as one process.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.stats
import torch
from torch import nn

import rtool
from rtool.corner.deepfool import DeepFoolConfig, RadiusSummary, robustness_radius
from rtool.corner.selection import CornerCases, select_corner_cases
from rtool.corner.sharded import DEFAULT_SHARD_SIZE, dataset_traces
from rtool.corner.surprise import DEFAULT_K, LABEL_SOURCES, VARIANTS, surprise_scores
from rtool.corner.traces import LOGITS, activation_traces
from rtool.data.classification import ClassificationData
from rtool.engine import broadcast_from_rank0, run_sharded, stable_hash
from rtool.errors import UsageError
from rtool.models import check_model_name
from rtool.models.corner import CORNER_ARCHITECTURE, classification_accuracy, corner_training, train_corner_model

PHASES = ("original", "retrained")


@dataclass(frozen=True)
class CornerSettings:
    """Every choice of the experiment, with its default (the authors' where they made one)."""

    models: int = 50                 # M models per phase
    architecture: str = CORNER_ARCHITECTURE  # what is trained: the authors' ConvNet, or a zoo model by name
    corner_cases: int = 200          # k corner cases removed
    per_model_k: int | None = None   # nominations per model (default: corner_cases)
    variant: str = "dsa3"            # the surprise that nominates (dsa0..dsa3, lsa, mdsa)
    knn: int = DEFAULT_K             # DSA3's neighbours
    layers: tuple[str, ...] = (LOGITS,)  # activation traces: the logits (the authors') or named layers
    reference_labels: str = "true"   # reference class blocks by ground truth (the authors')
    # Each training image is scored under its own label: a mislabelled or ambiguous image then sits far from
    # its class and near another, so it surprises. The authors scored under the model's prediction ("pred",
    # see `authors()`), under which a mislabelled image the model does not memorise looks ordinary.
    target_labels: str = "true"
    exclude_self: bool = False       # the authors keep a target's own trace among its neighbours
    epochs: int | None = None        # None: the dataset's default recipe (rtool.models.corner_training)
    seed: int = 0                    # model m of either phase trains with seed + m
    deepfool: DeepFoolConfig = field(default_factory=DeepFoolConfig)
    dropout_quirk: bool = False      # the authors' models never left training mode: dropout on in traces too
    batch_size: int = 256            # DeepFool / trace batches
    shard_size: int = DEFAULT_SHARD_SIZE  # images per resumable shard over a dataset (`corner dsa`/`deepfool`)

    @classmethod
    def authors(cls, **overrides) -> "CornerSettings":
        """The reference code's choices (spec §A.5, §B.1): targets under the model's prediction, dropout left on."""
        return cls(**{"target_labels": "pred", "dropout_quirk": True, **overrides})

    def __post_init__(self) -> None:
        for name in ("models", "corner_cases", "knn", "batch_size", "shard_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"{name}={value!r}: expected a positive integer")
        if self.per_model_k is not None and (not isinstance(self.per_model_k, int) or self.per_model_k < 1):
            raise UsageError(f"per_model_k={self.per_model_k!r}: expected a positive integer")
        if self.variant not in VARIANTS:
            raise UsageError(f"surprise variant {self.variant!r}: expected one of {', '.join(VARIANTS)}")
        for name in ("reference_labels", "target_labels"):
            if getattr(self, name) not in LABEL_SOURCES:
                raise UsageError(f"{name} {getattr(self, name)!r}: expected one of {', '.join(LABEL_SOURCES)}")
        check_model_name(self.architecture)
        if not self.layers:
            raise UsageError("layers is empty; expected 'logits' or one or more layer names")


@dataclass(frozen=True)
class ModelRun:
    """One trained model of one phase: its seed, test accuracy, DeepFool radius and (original phase) the
    surprise of every training image."""

    phase: str
    index: int
    seed: int
    test_accuracy: float
    radius: RadiusSummary
    radii: torch.Tensor                 # [N_test] float64, per test image
    final_labels: torch.Tensor          # [N_test] int64, the label after the perturbation
    surprise: torch.Tensor | None       # [N_train] float64 (original phase only)


@dataclass(frozen=True)
class PairedComparison:
    """Retrained minus original mean radius over the M pairs, and two paired tests."""

    mean_before: float
    mean_after: float
    std_before: float
    std_after: float
    mean_difference: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float | None
    wilcoxon_pvalue: float | None


@dataclass(frozen=True)
class CornerExperiment:
    original: list[ModelRun]
    retrained: list[ModelRun]
    corner: CornerCases
    comparison: PairedComparison
    train_labels: torch.Tensor          # [N_train] the labels the models were trained on
    planted: torch.Tensor | None = None  # indices of planted corner cases (the embedded default), if any
    config: dict = field(default_factory=dict)

    def planted_found(self) -> tuple[int, int] | None:
        """(planted among the selected corner cases, planted) or None without a planted truth."""
        if self.planted is None:
            return None
        found = int(torch.isin(self.planted, self.corner.indices).sum())
        return found, int(self.planted.numel())


def compare_radii(before: list[float], after: list[float]) -> PairedComparison:
    """Paired t-test and Wilcoxon signed-rank test of after vs before (per model pair)."""
    b, a = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    diff = a - b
    if len(b) >= 2 and np.any(diff != diff[0]):
        t = scipy.stats.ttest_rel(a, b)
        t_stat, t_p = float(t.statistic), float(t.pvalue)
    else:  # one pair, or a constant difference: the t statistic is undefined
        t_stat, t_p = float("nan"), float("nan")
    w_stat = w_p = None
    if len(b) >= 2 and np.any(diff != 0):
        w = scipy.stats.wilcoxon(a, b)
        w_stat, w_p = float(w.statistic), float(w.pvalue)
    std = (lambda x: float(x.std(ddof=1)) if len(x) > 1 else 0.0)
    return PairedComparison(float(b.mean()), float(a.mean()), std(b), std(a), float(diff.mean()), t_stat, t_p,
                            w_stat, w_p)


def _train(data: ClassificationData, seed: int, settings: CornerSettings, device, quiet: bool) -> nn.Module:
    training = corner_training(data.name, settings.epochs)
    return train_corner_model(data, seed=seed, training=training, device=device, progress=not quiet,
                              collective=False, architecture=settings.architecture)


def dataset_surprise(model: nn.Module, reference: ClassificationData, targets: ClassificationData | None = None,
                     settings: CornerSettings = CornerSettings(), *, device: torch.device | str = "cpu",
                     out_dir=None, shard_size: int = DEFAULT_SHARD_SIZE, quiet: bool = True):
    """Surprise (`settings.variant`, traces of `settings.layers`) of every image of `targets` against the traces
    of `reference` (its labels as `settings.reference_labels` say). targets=None scores the reference images
    themselves, as the authors do with the training set. Returns the variant's result dataclass (`.scores`).

    out_dir: the traces are computed in resumable shards there (`rtool.corner.sharded`), split over torchrun
    ranks; the scores are computed on rank 0 and the other ranks get None.
    """
    if settings.exclude_self and targets is not None:
        raise UsageError("exclude_self applies when the targets are the reference images themselves")

    def traces_of(data: ClassificationData):
        return dataset_traces(model, data, settings.layers, batch_size=settings.batch_size, device=device,
                              dropout=settings.dropout_quirk, out_dir=out_dir, shard_size=shard_size, quiet=quiet)

    reference_traces = traces_of(reference)
    target_traces = reference_traces if targets is None else traces_of(targets)
    if reference_traces is None or target_traces is None:
        return None
    return _scores(reference_traces, target_traces, settings, reference.num_classes)


def _scores(reference_traces, target_traces, settings: CornerSettings, num_classes: int):
    return surprise_scores(reference_traces, target_traces, settings.variant, k=settings.knn,
                           reference_labels=settings.reference_labels, target_labels=settings.target_labels,
                           exclude_self=settings.exclude_self, num_classes=num_classes)


def _surprise(model: nn.Module, train: ClassificationData, settings: CornerSettings, device) -> torch.Tensor:
    # Inside one model's shard, on one rank: the traces are computed here, not in collective shards.
    traces = activation_traces(model.to(device), train.images, settings.layers, labels=train.labels,
                               batch_size=settings.batch_size, device=device, dropout=settings.dropout_quirk)
    return _scores(traces, traces, settings, train.num_classes).scores.double()


def _deepfool_config(settings: CornerSettings) -> DeepFoolConfig:
    if settings.dropout_quirk and not settings.deepfool.train_mode:
        return DeepFoolConfig(**{**asdict(settings.deepfool), "train_mode": True})
    return settings.deepfool


def _model_run(phase: str, index: int, train: ClassificationData, test: ClassificationData,
               settings: CornerSettings, device, quiet: bool, with_surprise: bool) -> dict:
    seed = settings.seed + index
    model = _train(train, seed, settings, device, quiet).to(device)
    accuracy = classification_accuracy(model, test, device=device)
    radius = robustness_radius(model, test.images, _deepfool_config(settings), batch_size=settings.batch_size,
                               quiet=True)
    summary = radius.summary()
    return {"phase": phase, "index": index, "seed": seed, "test_accuracy": accuracy, "radius": asdict(summary),
            "radii": radius.radius, "final_labels": radius.final_label,
            "surprise": _surprise(model, train, settings, device) if with_surprise else None}


def _as_run(record: dict) -> ModelRun:
    return ModelRun(phase=record["phase"], index=record["index"], seed=record["seed"],
                    test_accuracy=record["test_accuracy"], radius=RadiusSummary(**record["radius"]),
                    radii=record["radii"], final_labels=record["final_labels"], surprise=record["surprise"])


def _phase(phase: str, train: ClassificationData, test: ClassificationData, settings: CornerSettings, *,
           device, out_dir, quiet: bool, key: str, with_surprise: bool) -> list[ModelRun] | None:
    def compute(start: int, stop: int) -> list[dict]:
        return [_model_run(phase, m, train, test, settings, device, quiet, with_surprise) for m in range(start, stop)]

    merged = run_sharded(settings.models, compute, out_dir=out_dir, job_key=f"corner-{phase}-{key}", shard_size=1,
                         merge=lambda shards: [r for shard in shards for r in shard], quiet=quiet,
                         desc=f"{phase} models")
    return None if merged is None else [_as_run(r) for r in merged]


def run(train: ClassificationData, test: ClassificationData, settings: CornerSettings = CornerSettings(), *,
        device: torch.device | str = "cpu", out_dir=None, quiet: bool = True, planted: torch.Tensor | None = None,
        on_phase: Callable[[str], object] | None = None) -> CornerExperiment | None:
    """The whole experiment on `train` / `test`. Returns the result on rank 0, None on other torchrun ranks.

    `planted`: indices of training images known to be corner cases (the embedded default's mislabelled
    images), reported as how many of them the selection found. `on_phase(name)` is called as each phase starts.
    """
    if train.num_classes != test.num_classes or train.image_shape != test.image_shape:
        raise UsageError(f"train and test data differ: {train.num_classes} vs {test.num_classes} classes, "
                         f"images {train.image_shape} vs {test.image_shape}")
    if settings.corner_cases >= len(train):
        raise UsageError(f"corner_cases={settings.corner_cases} is not smaller than the {len(train)} training images")
    device = torch.device(device)
    key = stable_hash({"rtool": rtool.__version__, "settings": asdict(settings), "train": train.fingerprint(),
                       "test": test.fingerprint(), "device": device.type})
    if on_phase:
        on_phase("original")
    original = _phase("original", train, test, settings, device=device, out_dir=out_dir, quiet=quiet, key=key,
                      with_surprise=True)
    corner = None
    if original is not None:
        scores = torch.stack([r.surprise for r in original])
        corner = select_corner_cases(torch.nan_to_num(scores, nan=-np.inf), settings.corner_cases,
                                     settings.per_model_k)
    corner = broadcast_from_rank0(corner)
    kept = train.subset(corner.kept)
    if on_phase:
        on_phase("retrained")
    retrained = _phase("retrained", kept, test, settings, device=device, out_dir=out_dir, quiet=quiet, key=key,
                       with_surprise=False)
    if original is None or retrained is None:
        return None
    comparison = compare_radii([r.radius.mean_radius for r in original], [r.radius.mean_radius for r in retrained])
    return CornerExperiment(original=original, retrained=retrained, corner=corner, comparison=comparison,
                            train_labels=train.labels.clone(), planted=planted,
                            config={**asdict(settings), "dataset": train.name, "train_size": len(train),
                                    "test_size": len(test)})
