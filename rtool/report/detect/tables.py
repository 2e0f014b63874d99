"""The metrics table of `rtool detect` (printed, CSV, JSON) and the predictions CSV."""
from __future__ import annotations

import csv
import io
from dataclasses import asdict

import torch

from rtool.detect.evaluation import BASELINES, DETECTORS
from rtool.detect.fitted import SCORES, FittedDetector, SplitEvaluation
from rtool.report.numbers import format_number, jsonable, text_table

# (Metrics field, short header, what it is)
METRIC_COLUMNS = (
    ("auroc", "AUROC", "area under the ROC curve of the score against 'the prediction is wrong'"),
    ("aupr_wrong", "AUPR-wrong", "average precision with the wrong predictions as positives"),
    ("fpr_at_95_tpr", "FPR@95TPR", "share of correct predictions cancelled when 95% of the wrong ones are"),
    ("aurc", "AURC", "area under the risk-coverage curve (lower is better)"),
    ("cancelled", "cancelled", "share of predictions cancelled at the threshold chosen on validation"),
    ("accepted_accuracy", "acc-accepted", "accuracy of the model on the predictions it keeps"),
    ("precision_wrong", "prec-wrong", "share of the cancelled predictions that were wrong"),
    ("recall_wrong", "recall-wrong", "share of the wrong predictions that are cancelled (caught)"),
)


def kind_of(score: str) -> str:
    return "detector" if score in DETECTORS else "baseline"


def format_metrics_table(metrics: dict) -> str:
    """The aligned plain-text table the CLI prints: one row per detector, then the baselines."""
    rows = [("score", "kind") + tuple(header for _, header, _ in METRIC_COLUMNS)]
    for name in SCORES:
        m = asdict(metrics[name])
        rows.append((name, kind_of(name)) + tuple(format_number(m[key], 3) for key, _, _ in METRIC_COLUMNS))
    return text_table(rows, left={0, 1})


def caught_line(evaluation: SplitEvaluation, score: str = "combined") -> str:
    """One sentence: how many wrong predictions `score` catches and what that does to the accuracy."""
    m = evaluation.metrics[score]
    n, wrong = len(evaluation.wrong), int(evaluation.wrong.sum())
    caught = int(round(m.recall_wrong * wrong))
    best_baseline = max(BASELINES, key=lambda b: evaluation.metrics[b].auroc)
    b = evaluation.metrics[best_baseline]
    return (f"{score} cancels {m.cancelled:.1%} of the {n} predictions and catches {caught}/{wrong} wrong ones "
            f"({m.recall_wrong:.1%}); accuracy {evaluation.accuracy:.1%} -> {m.accepted_accuracy:.1%} on the "
            f"accepted. Best baseline {best_baseline}: AUROC {b.auroc:.3f} vs {m.auroc:.3f}, catches "
            f"{b.recall_wrong:.1%} at {b.cancelled:.1%} cancelled")


def metrics_csv_text(metrics: dict) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(["score", "kind", "threshold"] + [key for key, _, _ in METRIC_COLUMNS] + ["recall_correct"])
    for name in SCORES:
        m = metrics[name]
        writer.writerow([name, kind_of(name), format_number(m.threshold, 6)]
                        + [format_number(getattr(m, key), 6) for key, _, _ in METRIC_COLUMNS]
                        + [format_number(m.recall_correct, 6)])
    return buffer.getvalue()


def metrics_summary(evaluation: SplitEvaluation, fitted: FittedDetector, files: list[str]) -> dict:
    """Everything metrics.json holds."""
    m = fitted.mutants
    return jsonable({
        "split": evaluation.split, "images": len(evaluation.wrong), "wrong": int(evaluation.wrong.sum()),
        "accuracy": evaluation.accuracy,
        "metrics": {name: {"kind": kind_of(name), **asdict(evaluation.metrics[name])} for name in SCORES},
        "validation_metrics": {name: asdict(fitted.val_metrics[name]) for name in SCORES},
        "layer": fitted.layer, "conductance_method": fitted.conductance_method,
        "mutants": {"accepted": len(m.seeds), "candidates_drawn": m.candidates_drawn,
                    "original_val_accuracy": m.original_accuracy,
                    "mean_accepted_val_accuracy": sum(m.accuracies) / len(m.accuracies) if m.accuracies else None},
        "identity": fitted.identity, "config": asdict(fitted.settings), "files": files,
    })


def predictions_csv_text(keys: list[str], predictions: torch.Tensor, scores: torch.Tensor, accept: torch.Tensor,
                         labels: torch.Tensor | None = None, class_names: list[str] | None = None) -> str:
    """image;prediction[;name][;label;correct];score;accept, one row per input in order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    header = ["image", "prediction"] + (["prediction_name"] if class_names else [])
    header += (["label", "correct"] if labels is not None else []) + ["score", "accept"]
    writer.writerow(header)
    for i, key in enumerate(keys):
        pred = int(predictions[i])
        row = [key, pred] + ([class_names[pred] if pred < len(class_names) else ""] if class_names else [])
        if labels is not None:
            row += [int(labels[i]), int(pred == int(labels[i]))]
        writer.writerow(row + [format_number(float(scores[i]), 6), int(bool(accept[i]))])
    return buffer.getvalue()
