"""Write everything `rtool score` produces into one folder (the CLI calls this; analyses never write files).

Every file is written atomically (temp file beside it, then rename): a crash leaves either the previous
complete file or the new complete one, never half a file and never a stray temp file.
"""
from __future__ import annotations

import re
from pathlib import Path

from rtool.engine import atomic_write_json, atomic_write_text
from rtool.errors import UsageError
from rtool.report.outputs import prepare_out_dir, remove_stale
from rtool.report.score.figures import plot_crs, write_overlays
from rtool.report.score.html import render_score_html
from rtool.report.score.summary import score_summary
from rtool.report.score.tables import ClassNames, classes_csv_text, images_csv_text
from rtool.score.results import ScoreResult

IMAGES_CSV = "images.csv"
SUMMARY_JSON = "summary.json"
CRS_PNG = "crs.png"
REPORT_HTML = "report.html"
OVERLAY_DIR = "overlays"
_OVERLAY_NAME = re.compile(r"^\d+_.+\.png$")


def write_classes_csv(result: ScoreResult, path: str | Path, *, class_csv_names: ClassNames | None = None,
                      extra_columns: bool = True) -> Path:
    """classes.csv alone (the authors' `id;acc;crs;name` format, plus rtool's columns unless disabled)."""
    return atomic_write_text(path, classes_csv_text(result, class_csv_names, extra_columns=extra_columns))


def _check_options(csv_file_name: str, overlay_classes: int, overlays_per_class: int) -> None:
    if (not csv_file_name or Path(csv_file_name).name != csv_file_name or not csv_file_name.endswith(".csv")
            or csv_file_name in (IMAGES_CSV, SUMMARY_JSON, CRS_PNG, REPORT_HTML)):
        raise UsageError(f"csv_file_name {csv_file_name!r}: expected a plain file name ending in .csv, "
                         f"other than {IMAGES_CSV}")
    for name, value in (("overlay_classes", overlay_classes), ("overlays_per_class", overlays_per_class)):
        if not isinstance(value, int) or value < 0:
            raise UsageError(f"{name}={value!r}: expected a non-negative integer")


def write_score_outputs(result: ScoreResult, out_dir: str | Path, *, dataset=None,
                        class_csv_names: ClassNames | None = None, overlay_classes: int = 6,
                        overlays_per_class: int = 4, csv_file_name: str = "classes.csv",
                        extra_columns: bool = True) -> dict[str, Path]:
    """Write classes.csv (or `csv_file_name`), images.csv, crs.png, overlays/, summary.json and report.html.

    `class_csv_names[id]`: the name printed in the CSVs (the ImageNet caller passes the authors' spelling,
    `rtool.data.csv_name`); default the class name. `dataset`: the scored dataset, for the overlays (None: no
    overlays). `extra_columns=False` writes the authors' four columns only.
    Returns {"classes_csv", "images_csv", "crs_png", "overlay_01", ..., "summary_json", "report_html": path}.
    """
    _check_options(csv_file_name, overlay_classes, overlays_per_class)
    out = prepare_out_dir(out_dir)
    written: dict[str, Path] = {
        "classes_csv": write_classes_csv(result, out / csv_file_name, class_csv_names=class_csv_names,
                                         extra_columns=extra_columns),
        "images_csv": atomic_write_text(out / IMAGES_CSV, images_csv_text(result, class_csv_names)),
        "crs_png": plot_crs(result, out / CRS_PNG),
    }
    overlays = []
    if dataset is not None and overlay_classes > 0 and overlays_per_class > 0:
        overlays = write_overlays(result, dataset, out / OVERLAY_DIR, classes=overlay_classes,
                                  per_class=overlays_per_class)
    for overlay in overlays:
        written[f"overlay_{overlay.rank:02d}"] = overlay.path

    def rel(path: Path) -> str:
        return path.relative_to(out).as_posix()

    files = [rel(p) for p in written.values()] + [SUMMARY_JSON, REPORT_HTML]
    summary = score_summary(result, files)
    written["summary_json"] = atomic_write_json(out / SUMMARY_JSON, summary)
    links = {"per-class CSV": csv_file_name, "per-image CSV": IMAGES_CSV, "summary (JSON)": SUMMARY_JSON}
    page = render_score_html(summary, chart=CRS_PNG, overlays=[(o, rel(o.path)) for o in overlays], links=links)
    written["report_html"] = atomic_write_text(out / REPORT_HTML, page)
    remove_stale(out / OVERLAY_DIR, _OVERLAY_NAME, {o.path for o in overlays})
    return written
