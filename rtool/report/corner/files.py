"""Write everything `rtool corner run` produces into one folder, every file atomically."""
from __future__ import annotations

import io
from dataclasses import asdict
from html import escape
from pathlib import Path

import numpy as np

from rtool.corner.experiment import CornerExperiment
from rtool.data.classification import ClassificationData
from rtool.engine import atomic_write_bytes, atomic_write_json, atomic_write_text
from rtool.report.corner.figures import plot_corner_cases, plot_radii
from rtool.report.corner.tables import (corner_cases_csv_text, deepfool_csv_text, models_csv_text, radius_csv_text,
                                        surprise_csv_text)
from rtool.report.html import config_table, file_links, page, table
from rtool.report.numbers import html_cell, jsonable
from rtool.report.outputs import prepare_out_dir

MODELS_CSV = "models.csv"
CORNER_CSV = "corner_cases.csv"
SURPRISE_NPY = "surprise.npy"
SUMMARY_JSON = "summary.json"
RADII_PNG = "radius.png"
CORNERS_PNG = "corner_cases.png"
REPORT_HTML = "report.html"
RADIUS_DIR = "radius"


def corner_summary(result: CornerExperiment, files: list[str]) -> dict:
    found = result.planted_found()
    return jsonable({
        "config": result.config,
        "comparison": asdict(result.comparison),
        "models": [{"phase": r.phase, "model": r.index, "seed": r.seed, "test_accuracy": r.test_accuracy,
                    **asdict(r.radius)} for r in result.original + result.retrained],
        "corner_cases": {"indices": result.corner.indices, "counts": result.corner.counts,
                         "mean_rank": result.corner.mean_rank, "k": result.corner.k,
                         "per_model_k": result.corner.per_model_k, "num_models": result.corner.num_models,
                         "tie_break": result.corner.tie_break},
        "planted": None if found is None else {"indices": result.planted, "found": found[0], "planted": found[1]},
        "files": files,
    })


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def render_corner_html(summary: dict, links: dict[str, str]) -> str:
    c = summary["comparison"]
    rows = [[html_cell(m["phase"]), html_cell(m["model"]), html_cell(m["seed"]), html_cell(m["test_accuracy"]),
             html_cell(m["mean_radius"]), html_cell(m["rho_adv"]), html_cell(m["median_radius"]),
             html_cell(m["converged_fraction"])] for m in summary["models"]]
    models = table([("phase", True), ("model", False), ("seed", False), ("test acc", False), ("mean radius", False),
                    ("rho_adv", False), ("median radius", False), ("converged", False)], rows)
    planted = summary["planted"]
    planted_html = (f"<p>Planted mislabelled training images among the selected corner cases: "
                    f"<b>{planted['found']} of {planted['planted']}</b>.</p>" if planted else "")
    body = f"""<h1>Corner cases and the robustness radius</h1>
<p>Files: {file_links(links)}</p>
<div class="note"><p><b>What the numbers mean.</b> Each model's <b>robustness radius</b> is the mean L2 norm of the
smallest DeepFool perturbation that changes its prediction on a test image (pixels in [0, 1]; ρ_adv divides by the
image's norm). The training images whose surprise (DSA3 of the logits: how much closer an image sits to another
class than to its own) is among the highest under most models are the <b>corner cases</b>; they are removed and the
models retrained with the same seeds. A higher mean radius after retraining means the corner cases made the
models less robust.</p></div>
<h2>Before and after</h2>
<p>Mean radius {c['mean_before']:.4f} (original) → {c['mean_after']:.4f} (retrained), difference
{c['mean_difference']:+.4f}; paired t-test p = {html_cell(c['t_pvalue'], 3)}, Wilcoxon p =
{html_cell(c['wilcoxon_pvalue'], 3)}.</p>
{planted_html}
<img src="{escape(RADII_PNG)}" alt="radius per phase">
<h2>Models</h2>
{models}
<h2>The removed corner cases</h2>
<img src="{escape(CORNERS_PNG)}" alt="corner cases">
<h2>Configuration</h2>
{config_table(summary.get("config") or {})}"""
    return page("rtool corner report", body)


def write_corner_outputs(result: CornerExperiment, train: ClassificationData, out_dir: str | Path) -> dict[str, Path]:
    """models.csv, corner_cases.csv, radius/<phase>_<m>.csv, surprise.npy, radius.png, corner_cases.png,
    summary.json and report.html. Returns {name: path}."""
    out = prepare_out_dir(out_dir)
    written = {
        "models_csv": atomic_write_text(out / MODELS_CSV, models_csv_text(result)),
        "corner_csv": atomic_write_text(out / CORNER_CSV, corner_cases_csv_text(result)),
        "surprise_npy": atomic_write_bytes(out / SURPRISE_NPY, _npy_bytes(
            np.stack([r.surprise.numpy() for r in result.original]))),
        "radius_png": plot_radii(result, out / RADII_PNG),
        "corners_png": plot_corner_cases(result, train, out / CORNERS_PNG),
    }
    (out / RADIUS_DIR).mkdir(exist_ok=True)
    for run in result.original + result.retrained:
        written[f"radius_{run.phase}_{run.index}"] = atomic_write_text(
            out / RADIUS_DIR / f"{run.phase}_{run.index:03d}.csv", radius_csv_text(run.radii, run.final_labels))
    files = [p.relative_to(out).as_posix() for p in written.values()] + [SUMMARY_JSON, REPORT_HTML]
    summary = corner_summary(result, files)
    written["summary_json"] = atomic_write_json(out / SUMMARY_JSON, summary)
    links = {"per-model CSV": MODELS_CSV, "corner cases CSV": CORNER_CSV, "summary (JSON)": SUMMARY_JSON}
    written["report_html"] = atomic_write_text(out / REPORT_HTML, render_corner_html(summary, links))
    return written


def write_surprise_csv(result, data: ClassificationData, path: str | Path) -> Path:
    """`rtool corner dsa`'s per-image CSV (atomic)."""
    prepare_out_dir(Path(path).parent)
    return atomic_write_text(path, surprise_csv_text(result, data))


def write_radius_csv(result, path: str | Path) -> Path:
    """`rtool corner deepfool`'s per-image CSV (atomic)."""
    prepare_out_dir(Path(path).parent)
    return atomic_write_text(path, deepfool_csv_text(result))
