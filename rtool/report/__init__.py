"""Tables, figures and the HTML report. Analyses return results; this package (called by the CLI or a
user's script) writes them: CSV/JSON for machines, PNG and HTML for people, every file atomically."""
from rtool.report.score_figures import Overlay, dataset_key_index, plot_crs, write_overlays
from rtool.report.score_files import write_classes_csv, write_score_outputs
from rtool.report.score_html import render_score_html
from rtool.report.score_summary import crs_statistics, score_summary
from rtool.report.score_tables import (AUTHOR_COLUMNS, EXTRA_COLUMNS, IMAGE_CSV_COLUMNS, classes_csv_text,
                                       format_lowest_table, images_csv_text)

__all__ = [
    "AUTHOR_COLUMNS", "EXTRA_COLUMNS", "IMAGE_CSV_COLUMNS", "Overlay", "classes_csv_text", "crs_statistics",
    "dataset_key_index", "format_lowest_table", "images_csv_text", "plot_crs", "render_score_html",
    "score_summary", "write_classes_csv", "write_overlays", "write_score_outputs",
]
