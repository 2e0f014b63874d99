"""Text tables of the corner-case experiment: per-model figures, the corner cases, per-sample radii."""
from __future__ import annotations

from rtool.corner.experiment import CornerExperiment, ModelRun
from rtool.report.numbers import csv_text, format_number, text_table

MODEL_COLUMNS = ("phase", "model", "seed", "test_accuracy", "mean_radius", "rho_adv", "median_radius",
                 "converged_fraction")
CORNER_COLUMNS = ("rank", "index", "count", "mean_rank", "label", "planted")


def _model_row(run: ModelRun) -> list[str]:
    r = run.radius
    return [run.phase, str(run.index), str(run.seed), format_number(run.test_accuracy), format_number(r.mean_radius),
            format_number(r.rho_adv), format_number(r.median_radius), format_number(r.converged_fraction)]


def models_csv_text(result: CornerExperiment) -> str:
    return csv_text([_model_row(run) for run in result.original + result.retrained], MODEL_COLUMNS)


def corner_cases_csv_text(result: CornerExperiment) -> str:
    corner = result.corner
    planted = set(result.planted.tolist()) if result.planted is not None else set()
    rows = [[str(rank), str(i), str(c), format_number(m, 3), str(int(result.train_labels[i])),
             "1" if i in planted else "0"]
            for rank, (i, c, m) in enumerate(zip(corner.indices.tolist(), corner.counts.tolist(),
                                                 corner.mean_rank.tolist()), start=1)]
    return csv_text(rows, CORNER_COLUMNS)


def radius_csv_text(radii, final_labels) -> str:
    """Per test image: `rob` (the radius) and `pred_y` (the label after the perturbation), the authors' columns."""
    rows = [[format_number(float(r), 6), str(int(y))] for r, y in zip(radii.tolist(), final_labels.tolist())]
    return csv_text(rows, ("rob", "pred_y"))


def format_comparison(result: CornerExperiment) -> str:
    """What `rtool corner run` prints: mean radius per phase, and the paired difference."""
    c = result.comparison
    acc = {phase: sum(r.test_accuracy for r in runs) / len(runs)
           for phase, runs in (("original", result.original), ("retrained", result.retrained))}
    rho = {phase: sum(r.radius.rho_adv for r in runs) / len(runs)
           for phase, runs in (("original", result.original), ("retrained", result.retrained))}
    rows = [("phase", "models", "mean radius", "std", "rho_adv", "test acc"),
            ("original", str(len(result.original)), format_number(c.mean_before), format_number(c.std_before),
             format_number(rho["original"]), format_number(acc["original"])),
            ("retrained", str(len(result.retrained)), format_number(c.mean_after), format_number(c.std_after),
             format_number(rho["retrained"]), format_number(acc["retrained"]))]
    lines = [text_table(rows, left={0})]
    p = "n/a" if c.wilcoxon_pvalue is None else f"{c.wilcoxon_pvalue:.3g}"
    t = "n/a" if c.t_pvalue != c.t_pvalue else f"{c.t_pvalue:.3g}"
    lines.append(f"retrained - original: {c.mean_difference:+.4f} (paired t-test p = {t}, Wilcoxon p = {p})")
    return "\n".join(lines)


def surprise_csv_text(result, data) -> str:
    """Per image: its index in the dataset, label, the label it was scored under, the score and its parts."""
    rows = [[str(int(i)), str(int(y)), str(int(c)), format_number(float(v), 6), format_number(float(a), 6),
             format_number(float(b), 6)]
            for i, y, c, v, a, b in zip(data.indices.tolist(), data.labels.tolist(), result.labels.tolist(),
                                        result.scores.tolist(), _column(result, "dist_a"), _column(result, "dist_b"))]
    return csv_text(rows, ("index", "label", "scored_as", "score", "dist_a", "dist_b"))


def _column(result, name: str) -> list:
    values = getattr(result, name, None)
    return values.tolist() if values is not None else [float("nan")] * len(result.scores)


def deepfool_csv_text(result) -> str:
    """Per test image: the authors' `rob` and `pred_y`, then rho, the attacked label, iterations, converged."""
    columns = result.columns()
    rows = [[format_number(r, 6), str(p), format_number(h, 6), str(l), str(i), "1" if c else "0"]
            for r, p, h, l, i, c in zip(columns["rob"], columns["pred_y"], columns["rho"], columns["label"],
                                        columns["iterations"], columns["converged"])]
    return csv_text(rows, ("rob", "pred_y", "rho", "label", "iterations", "converged"))
