"""Write what `rtool detect eval` and `predict` produce (the CLI calls these; the analysis writes no files)."""
from __future__ import annotations

from pathlib import Path

from rtool.detect.fitted import FittedDetector, SplitEvaluation
from rtool.engine import atomic_write_json, atomic_write_text
from rtool.report.detect.figures import plot_risk_coverage, plot_roc
from rtool.report.detect.html import render_detect_html
from rtool.report.detect.tables import metrics_csv_text, metrics_summary, predictions_csv_text
from rtool.report.outputs import prepare_out_dir

METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
ROC_PNG = "roc.png"
RISK_COVERAGE_PNG = "risk_coverage.png"
REPORT_HTML = "report.html"


def write_eval_outputs(evaluation: SplitEvaluation, fitted: FittedDetector, out_dir: str | Path) -> dict[str, Path]:
    """metrics.csv, metrics.json, roc.png, risk_coverage.png and report.html in `out_dir`."""
    out = prepare_out_dir(out_dir)
    written = {
        "metrics_csv": atomic_write_text(out / METRICS_CSV, metrics_csv_text(evaluation.metrics)),
        "roc_png": plot_roc(evaluation, out / ROC_PNG),
        "risk_coverage_png": plot_risk_coverage(evaluation, out / RISK_COVERAGE_PNG),
    }
    summary = metrics_summary(evaluation, fitted, [METRICS_CSV, METRICS_JSON, ROC_PNG, RISK_COVERAGE_PNG,
                                                   REPORT_HTML])
    written["metrics_json"] = atomic_write_json(out / METRICS_JSON, summary)
    links = {"metrics (CSV)": METRICS_CSV, "metrics (JSON)": METRICS_JSON}
    written["report_html"] = atomic_write_text(out / REPORT_HTML, render_detect_html(
        summary, roc=ROC_PNG, risk_coverage=RISK_COVERAGE_PNG, links=links))
    return written


def write_predictions_csv(path: str | Path, keys, predictions, scores, accept, labels=None,
                          class_names=None) -> Path:
    return atomic_write_text(path, predictions_csv_text(list(keys), predictions, scores, accept, labels,
                                                        class_names))
