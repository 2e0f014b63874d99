"""Write everything `rtool noc mce` produces into one folder, every file atomically."""
from __future__ import annotations

from pathlib import Path

from rtool.engine import atomic_write_json, atomic_write_text
from rtool.noc.results import MceResult
from rtool.report.noc.figures import plot_ce
from rtool.report.noc.html import render_mce_html
from rtool.report.noc.tables import score_rows, scores_csv_text
from rtool.report.numbers import jsonable
from rtool.report.outputs import prepare_out_dir

SCORES_CSV = "corruptions.csv"
SUMMARY_JSON = "summary.json"
CE_PNG = "ce.png"
REPORT_HTML = "report.html"


def mce_summary(result: MceResult, files=()) -> dict:
    return jsonable({
        "benchmark": result.benchmark, "mce": result.mce, "ce_form": result.ce_form, "reference": result.reference,
        "clean_error": result.clean_error, "reference_clean_error": result.reference_clean_error,
        "n_images": result.n_images, "corruptions": score_rows(result), "undefined": list(result.undefined),
        "config": result.config, "files": list(files),
    })


def write_mce_outputs(result: MceResult, out_dir: str | Path) -> dict[str, Path]:
    """corruptions.csv, ce.png, summary.json and report.html; returns {kind: path}."""
    out = prepare_out_dir(out_dir)
    written = {"scores_csv": atomic_write_text(out / SCORES_CSV, scores_csv_text(result)),
               "ce_png": plot_ce(result, out / CE_PNG)}
    summary = mce_summary(result, [SCORES_CSV, CE_PNG, SUMMARY_JSON, REPORT_HTML])
    written["summary_json"] = atomic_write_json(out / SUMMARY_JSON, summary)
    links = {"per-corruption CSV": SCORES_CSV, "summary (JSON)": SUMMARY_JSON}
    written["report_html"] = atomic_write_text(out / REPORT_HTML, render_mce_html(summary, CE_PNG, links))
    return written
