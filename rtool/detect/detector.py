"""The wrong-prediction detector, its baselines and metrics (specs/conductance_lcr.md, section c).

Every score here is "higher = more likely wrong". The detector is the authors' MLP (200-200, ReLU, dropout 0.5,
Adam 1e-3, binary cross-entropy) fit on the base model's own training-set predictions (label 1 = wrong), with
per-column normalisation x~ = (x - mean) / (max - min) from the training rows. The threshold is chosen on a
validation split where the recall on wrong and the recall on correct predictions are closest (the authors tuned
it by hand towards that point). Baselines on the base model's logits: 1 - max softmax, -max logit, entropy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch import nn

from rtool.errors import UsageError


@dataclass(frozen=True)
class DetectorSettings:
    """MLP detector settings; defaults are the authors' conductance MLP, CIFAR run (20 epochs at batch 50)."""

    hidden: tuple[int, ...] = (200, 200)
    dropout: float = 0.5
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 50
    seed: int = 0
    dropout_last_only: bool = False  # the combined detector's layout: dropout after the last hidden layer only

    def __post_init__(self) -> None:
        if not self.hidden or any(not isinstance(h, int) or h < 1 for h in self.hidden):
            raise UsageError(f"detector hidden sizes {self.hidden!r}: expected positive integers")
        if not (0 <= self.dropout < 1):
            raise UsageError(f"detector dropout {self.dropout!r}: expected a number in [0, 1)")
        for name in ("epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"detector {name} {getattr(self, name)!r}: expected an integer >= 1")
        if not self.lr > 0:
            raise UsageError(f"detector lr {self.lr!r}: expected a number > 0")


class MLPDetector(nn.Module):
    """Normalisation, then Linear-ReLU-Dropout blocks and a Linear(1) logit; `forward` returns P(wrong)."""

    def __init__(self, features: int, hidden: tuple[int, ...], dropout: float, last_only: bool = False) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))
        layers: list[nn.Module] = []
        width = features
        for i, h in enumerate(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            if not last_only or i == len(hidden) - 1:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net((x - self.shift) / self.scale)[:, 0])


@dataclass(frozen=True)
class Metrics:
    """Detection metrics of one score (wrong = positive) and the decision at `threshold`."""

    auroc: float
    aupr_wrong: float
    fpr_at_95_tpr: float
    aurc: float
    threshold: float
    cancelled: float              # fraction of predictions flagged (score > threshold)
    accepted_accuracy: float      # base accuracy on the rest (nan when all are cancelled)
    precision_wrong: float
    recall_wrong: float
    recall_correct: float


def _as_numpy(values, what: str) -> np.ndarray:
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise UsageError(f"{what}: expected a non-empty 1-d array, got shape {array.shape}")
    return array


def _check_pair(scores, wrong):
    s = _as_numpy(scores, "detector scores").astype(np.float64)
    w = _as_numpy(wrong, "wrong-prediction labels").astype(bool)
    if s.shape != w.shape:
        raise UsageError(f"detector scores {s.shape} and labels {w.shape}: expected the same length")
    if w.all() or not w.any():
        raise UsageError("wrong-prediction labels: expected both wrong and correct predictions")
    return s, w


def equal_recall_threshold(scores, wrong) -> float:
    """The threshold where recall on wrong (TPR) and recall on correct (1 - FPR) are closest."""
    s, w = _check_pair(scores, wrong)
    fpr, tpr, thresholds = roc_curve(w, s)
    best = int(np.argmin(np.abs(tpr - (1 - fpr))[1:])) + 1  # skip sklearn's +inf start point
    # roc_curve flags score >= t; store the midpoint below it so "score > threshold" flags the same rows
    below = s[s < thresholds[best]]
    return float((thresholds[best] + below.max()) / 2) if below.size else float(np.nextafter(thresholds[best], -np.inf))


def aurc(scores, wrong) -> float:
    """Area under the risk-coverage curve: mean error rate of the k most confident (lowest-score) predictions."""
    s, w = _as_numpy(scores, "detector scores"), _as_numpy(wrong, "wrong-prediction labels").astype(np.float64)
    order = np.argsort(s, kind="stable")
    risks = np.cumsum(w[order]) / np.arange(1, len(w) + 1)
    return float(risks.mean())


def detection_metrics(scores, wrong, threshold: float) -> Metrics:
    """All metrics of `scores` against `wrong` (1 = the base prediction is wrong), decisions at `threshold`."""
    s, w = _check_pair(scores, wrong)
    fpr, tpr, _ = roc_curve(w, s)
    flagged = s > threshold
    accepted = ~flagged
    return Metrics(
        auroc=float(roc_auc_score(w, s)),
        aupr_wrong=float(average_precision_score(w, s)),
        fpr_at_95_tpr=float(fpr[np.searchsorted(tpr, 0.95, side="left")]),
        aurc=aurc(s, w),
        threshold=float(threshold),
        cancelled=float(flagged.mean()),
        accepted_accuracy=float((~w[accepted]).mean()) if accepted.any() else float("nan"),
        precision_wrong=float(w[flagged].mean()) if flagged.any() else float("nan"),
        recall_wrong=float(flagged[w].mean()),
        recall_correct=float(accepted[~w].mean()),
    )


def baseline_scores(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Higher-is-wronger baselines from the base model's logits (N, K)."""
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        raise UsageError(f"baseline logits: expected a tensor (N, K), got {getattr(logits, 'shape', logits)}")
    logits = logits.detach().double()
    log_p = torch.log_softmax(logits, 1)
    return {
        "max_softmax": 1 - log_p.exp().max(1).values,
        "max_logit": -logits.max(1).values,
        "entropy": -(log_p.exp() * log_p).sum(1),
    }


def fit_detector(features: torch.Tensor, wrong: torch.Tensor,
                 settings: DetectorSettings = DetectorSettings()) -> MLPDetector:
    """Fit the MLP on (features (N, F), wrong (N,)); returns it in eval mode with the normalisation inside."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] == 0:
        raise UsageError(f"detector features: expected a tensor (N, F), got {getattr(features, 'shape', features)}")
    x = features.detach().float().cpu()
    labels = _as_numpy(wrong, "wrong-prediction labels").astype(bool)
    if labels.shape[0] != x.shape[0]:
        raise UsageError(f"wrong-prediction labels: {labels.shape[0]} given, expected {x.shape[0]} (one per row)")
    if labels.all() or not labels.any():
        raise UsageError("wrong-prediction labels: expected both wrong and correct predictions")
    y = torch.as_tensor(labels, dtype=torch.float32)
    gen = torch.Generator().manual_seed(settings.seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(settings.seed)  # initialisation and dropout masks
    try:
        model = MLPDetector(x.shape[1], settings.hidden, settings.dropout, settings.dropout_last_only)
        span = x.max(0).values - x.min(0).values
        model.shift.copy_(x.mean(0))
        model.scale.copy_(torch.where(span > 0, span, torch.ones_like(span)))
        optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
        loss_fn = nn.BCEWithLogitsLoss()
        model.train()
        for _ in range(settings.epochs):
            order = torch.randperm(x.shape[0], generator=gen)
            for start in range(0, x.shape[0], settings.batch_size):
                idx = order[start:start + settings.batch_size]
                optimiser.zero_grad()
                logit = model.net((x[idx] - model.shift) / model.scale)[:, 0]
                loss_fn(logit, y[idx]).backward()
                optimiser.step()
    finally:
        torch.random.set_rng_state(torch_state)
    return model.eval()


def detector_scores(detector: MLPDetector, features: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """P(wrong) for each row of `features`."""
    if features.dim() != 2 or features.shape[1] != detector.shift.numel():
        raise UsageError(f"detector features {tuple(features.shape)}: expected (N, {detector.shift.numel()})")
    with torch.no_grad():
        x = features.detach().float().cpu()
        return torch.cat([detector(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


# The authors' combined ("both") detector on [LCR, p_cond]: 10-10, dropout after the second layer, batch 100.
COMBINED_SETTINGS = DetectorSettings(hidden=(10, 10), epochs=3, batch_size=100, dropout_last_only=True)
