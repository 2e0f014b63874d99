"""Figures of `rtool detect`: the ROC curves and the risk-coverage curves of every detector and baseline."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from rtool.detect.evaluation import DETECTORS
from rtool.detect.fitted import SCORES, SplitEvaluation
from rtool.report.figures import new_figure, save_figure

COLOURS = {"conductance": "#1f77b4", "lcr": "#2ca02c", "combined": "#d62728", "max_softmax": "#7f7f7f",
           "max_logit": "#8c564b", "entropy": "#9467bd"}


def _style(name: str) -> dict:
    return {"color": COLOURS.get(name), "linestyle": "-" if name in DETECTORS else "--",
            "linewidth": 2.0 if name in DETECTORS else 1.4}


def plot_roc(evaluation: SplitEvaluation, path: str | Path) -> Path:
    """ROC of every score (wrong predictions = positives), detectors solid, baselines dashed."""
    figure = new_figure(5.5, 5)
    ax = figure.add_subplot()
    wrong = evaluation.wrong.numpy()
    for name in SCORES:
        fpr, tpr, _ = roc_curve(wrong, evaluation.scores[name].double().numpy())
        ax.plot(fpr, tpr, label=f"{name} (AUROC {evaluation.metrics[name].auroc:.3f})", **_style(name))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("false positive rate (correct predictions cancelled)")
    ax.set_ylabel("true positive rate (wrong predictions caught)")
    ax.set_title(f"ROC on the {evaluation.split} split ({len(wrong)} images, {int(wrong.sum())} wrong)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    return save_figure(figure, path)


def risk_coverage(scores: np.ndarray, wrong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk): keeping the k lowest-score predictions, coverage k/N and their error rate."""
    order = np.argsort(scores, kind="stable")
    k = np.arange(1, len(wrong) + 1)
    return k / len(wrong), np.cumsum(wrong[order]) / k


def plot_risk_coverage(evaluation: SplitEvaluation, path: str | Path) -> Path:
    """Risk (error rate of the accepted predictions) against coverage, for every score."""
    figure = new_figure(5.5, 5)
    ax = figure.add_subplot()
    wrong = evaluation.wrong.numpy().astype(np.float64)
    top = float(wrong.mean())
    for name in SCORES:
        coverage, risk = risk_coverage(evaluation.scores[name].double().numpy(), wrong)
        top = max(top, float(risk[coverage >= 0.1].max()))
        ax.plot(coverage, risk, label=f"{name} (AURC {evaluation.metrics[name].aurc:.4f})", **_style(name))
    ax.axhline(wrong.mean(), color="black", linewidth=0.8, linestyle=":", label="no cancelling")
    ax.set_xlabel("coverage (share of predictions accepted)")
    ax.set_ylabel("risk (error rate of the accepted)")
    ax.set_title(f"Risk-coverage on the {evaluation.split} split")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, min(1.0, max(0.02, top * 1.1)))
    return save_figure(figure, path)
