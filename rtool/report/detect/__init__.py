"""Writers of `rtool detect`: metrics.csv/metrics.json, the ROC and risk-coverage figures, report.html and the
predictions CSV, every file atomically."""
from rtool.report.detect.figures import plot_risk_coverage, plot_roc
from rtool.report.detect.files import write_eval_outputs, write_predictions_csv
from rtool.report.detect.html import render_detect_html
from rtool.report.detect.tables import (METRIC_COLUMNS, caught_line, format_metrics_table, metrics_csv_text,
                                        metrics_summary, predictions_csv_text)

__all__ = [
    "METRIC_COLUMNS", "caught_line", "format_metrics_table", "metrics_csv_text", "metrics_summary",
    "plot_risk_coverage", "plot_roc", "predictions_csv_text", "render_detect_html", "write_eval_outputs",
    "write_predictions_csv",
]
