"""Writers of `rtool corner`: per-model and per-sample CSVs, the corner cases, figures, summary.json, report.html."""
from rtool.report.corner.figures import plot_corner_cases, plot_radii
from rtool.report.corner.files import corner_summary, write_corner_outputs, write_radius_csv, write_surprise_csv
from rtool.report.corner.tables import (corner_cases_csv_text, format_comparison, models_csv_text,
                                        radius_csv_text)

__all__ = ["corner_cases_csv_text", "corner_summary", "format_comparison", "models_csv_text", "plot_corner_cases",
           "plot_radii", "radius_csv_text", "write_corner_outputs", "write_radius_csv", "write_surprise_csv"]
