"""Writers of `rtool noc mce`: corruptions.csv, summary.json, the CE bar chart and report.html, atomically."""
from rtool.report.noc.figures import plot_ce
from rtool.report.noc.files import mce_summary, write_mce_outputs
from rtool.report.noc.html import render_mce_html
from rtool.report.noc.tables import CSV_COLUMNS, format_scores_table, score_rows, scores_csv_text

__all__ = ["CSV_COLUMNS", "format_scores_table", "mce_summary", "plot_ce", "render_mce_html", "score_rows",
           "scores_csv_text", "write_mce_outputs"]
