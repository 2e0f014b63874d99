"""Writers of `rtool score`: classes.csv in the authors' format, images.csv, summary.json, the CRS chart, the
saliency overlays and report.html, every file atomically."""
from rtool.report.score.figures import Overlay, plot_crs, write_overlays
from rtool.report.score.files import write_classes_csv, write_score_outputs
from rtool.report.score.html import render_score_html
from rtool.report.score.summary import crs_statistics, score_summary
from rtool.report.score.tables import (AUTHOR_COLUMNS, EXTRA_COLUMNS, IMAGE_CSV_COLUMNS, classes_csv_text,
                                       format_lowest_table, images_csv_text)

__all__ = [
    "AUTHOR_COLUMNS", "EXTRA_COLUMNS", "IMAGE_CSV_COLUMNS", "Overlay", "classes_csv_text", "crs_statistics",
    "format_lowest_table", "images_csv_text", "plot_crs", "render_score_html", "score_summary",
    "write_classes_csv", "write_overlays", "write_score_outputs",
]
