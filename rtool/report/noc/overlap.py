"""Everything `rtool noc overlap` writes: the accuracy matrix and both overlap matrices as CSV, a JSON summary,
heatmaps and one HTML page (every file atomic), and the text the CLI prints."""
from __future__ import annotations

import math
from html import escape
from pathlib import Path

import numpy as np
import torch

from rtool.engine import atomic_write_json, atomic_write_text
from rtool.noc.overlap import FORMS, OverlapResult
from rtool.report.figures import new_figure, save_figure
from rtool.report.html import config_table, file_links, page, table
from rtool.report.numbers import format_number, jsonable, text_table
from rtool.report.outputs import prepare_out_dir

ACCURACY_CSV = "accuracy.csv"
OVERLAP_CSV = {"standard": "overlap_standard.csv", "bmvc2021": "overlap_bmvc2021.csv"}
SUMMARY_JSON = "summary.json"
ACCURACY_PNG = "accuracy.png"
OVERLAP_PNG = "overlap.png"
REPORT_HTML = "report.html"
OVERLAP_DIGITS = 2  # the reference saves the overlap matrix rounded to 2 decimals


def _matrix_csv(corner: str, rows: tuple[str, ...], cols: tuple[str, ...], values: torch.Tensor, digits: int) -> str:
    lines = [",".join((corner, *cols))]
    for name, row in zip(rows, values.tolist()):
        lines.append(",".join((name, *(format_number(v, digits) for v in row))))
    return "\n".join(lines) + "\n"


def accuracy_csv_text(result: OverlapResult) -> str:
    """Rows: the model's training corruption; columns: the test condition; top-1 accuracy."""
    return _matrix_csv("trained_on", result.conditions, result.conditions, result.accuracy, 4)


def overlap_csv_text(result: OverlapResult, form: str) -> str:
    return _matrix_csv("corruption", result.corruptions, result.corruptions, result.overlap_of(form), OVERLAP_DIGITS)


def overlap_summary(result: OverlapResult, files: list[str]) -> dict:
    clean = result.clean_row()
    return jsonable({
        "analysis": "noc overlap",
        "form": result.settings.form,
        "conditions": list(result.conditions),
        "test_images": result.total,
        "accuracy": result.accuracy,
        "correct": result.correct,
        "overlap": {form: result.overlap_of(form) for form in FORMS},
        "undefined": {form: list(names) for form, names in result.undefined.items()},
        "per_corruption": [
            {"corruption": c, "clean_model_clean": float(clean[0]), "clean_model_corrupted": float(clean[k + 1]),
             "trained_on_it": float(result.diagonal()[k]), "gain": float(result.gains()[k]),
             "trained_on_it_clean": float(result.accuracy[k + 1, 0])}
            for k, c in enumerate(result.corruptions)],
        "identity": result.identity,
        "trained_this_run": list(result.trained),
        "cells_computed_this_run": result.evaluated,
        "model_files": result.model_files,
        "files": files,
    })


def _heatmap(values: torch.Tensor, rows, cols, title: str, path: Path, xlabel: str, ylabel: str,
             vmax: float = 1.0, digits: int = 2) -> Path:
    k = len(cols)
    figure = new_figure(1.6 + 0.55 * k, 1.2 + 0.5 * len(rows))
    ax = figure.add_subplot(1, 1, 1)
    data = np.ma.masked_invalid(values.numpy())
    image = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=vmax)
    for (r, c), v in np.ndenumerate(values.numpy()):
        text = "nan" if math.isnan(v) else f"{v:.{digits}f}"
        ax.text(c, r, text, ha="center", va="center", fontsize=7,
                color="black" if not math.isnan(v) and v > 0.6 * vmax else "white" if not math.isnan(v) else "gray")
    ax.set_xticks(range(k), cols, rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    figure.colorbar(image, ax=ax, shrink=0.8)
    return save_figure(figure, path)


def plot_overlap(result: OverlapResult, path: str | Path) -> Path:
    form = result.settings.form
    return _heatmap(result.overlap, result.corruptions, result.corruptions,
                    f"Overlapping score ({form} form; 0 = independent, 1 = same robustness)", Path(path),
                    "corruption", "corruption")


def plot_accuracy(result: OverlapResult, path: str | Path) -> Path:
    return _heatmap(result.accuracy, result.conditions, result.conditions,
                    "Top-1 accuracy: model trained with (row), tested on (column)", Path(path),
                    "test condition", "trained with")


_EXPLANATION = """
<div class="note">
<p><b>What the numbers mean.</b> One model is trained per corruption (each epoch: the training set once
corrupted and once clean) plus a clean model (row <code>none</code>); each is tested on the clean test set
and on every corruption. With R<sub>m</sub>(c) = A[m, c] / A[m, none] (the <code>bmvc2021</code> form uses
A itself), the <b>overlap</b> of corruptions i and j is
max(0, ½·[(R<sub>i</sub>(j) − R<sub>none</sub>(j)) / (R<sub>j</sub>(j) − R<sub>none</sub>(j)) +
(R<sub>j</sub>(i) − R<sub>none</sub>(i)) / (R<sub>i</sub>(i) − R<sub>none</sub>(i))]): the share of the
robustness gain on j that training on i brings, relative to training on j itself, averaged with the reverse.
Near 1: the two corruptions test the same robustness (a benchmark needs only one); near 0: they are
independent. Values above 1 are possible (no upper clip); NaN means training on that corruption did not
raise accuracy on it, so its overlaps are undefined.</p>
</div>
"""


def _matrix_html(rows, cols, values: torch.Tensor, digits: int) -> str:
    headers = [("", True)] + [(c, False) for c in cols]
    cells = [[escape(r)] + [escape(format_number(v, digits)) for v in row] for r, row in zip(rows, values.tolist())]
    return table(headers, cells)


def _gains_html(result: OverlapResult) -> str:
    clean = result.clean_row()
    headers = [("corruption", True), ("clean model, clean", False), ("clean model, corrupted", False),
               ("trained on it, corrupted", False), ("gain", False), ("trained on it, clean", False)]
    rows = [[escape(c), f"{float(clean[0]):.4f}", f"{float(clean[k + 1]):.4f}", f"{float(result.diagonal()[k]):.4f}",
             f"{float(result.gains()[k]):+.4f}", f"{float(result.accuracy[k + 1, 0]):.4f}"]
            for k, c in enumerate(result.corruptions)]
    return table(headers, rows)


def render_overlap_html(result: OverlapResult, summary: dict) -> str:
    form = result.settings.form
    other = [f for f in FORMS if f != form][0]
    undefined = result.undefined[form]
    body = [
        "<h1>rtool noc overlap</h1>",
        f"<p>{len(result.corruptions)} corruptions, {result.total} test images, model "
        f"<code>{escape(result.settings.model)}</code>, {result.settings.epochs} epochs. "
        + file_links({"accuracy (CSV)": ACCURACY_CSV, f"overlap {form} (CSV)": OVERLAP_CSV[form],
                      f"overlap {other} (CSV)": OVERLAP_CSV[other], "summary (JSON)": SUMMARY_JSON}) + "</p>",
        _EXPLANATION,
        "<h2>Does training on a corruption help against it?</h2>", _gains_html(result),
        f"<h2>Overlap ({escape(form)} form)</h2>",
        f'<img src="{OVERLAP_PNG}" alt="overlap heatmap">',
        _matrix_html(result.corruptions, result.corruptions, result.overlap, OVERLAP_DIGITS),
    ]
    if undefined:
        body.append(f"<p>Undefined (training did not help on them): {escape(', '.join(undefined))}.</p>")
    body += [
        f"<h2>Overlap ({escape(other)} form)</h2>",
        _matrix_html(result.corruptions, result.corruptions, result.overlap_of(other), OVERLAP_DIGITS),
        "<h2>Accuracy matrix</h2>", f'<img src="{ACCURACY_PNG}" alt="accuracy heatmap">',
        _matrix_html(result.conditions, result.conditions, result.accuracy, 4),
        "<h2>Settings</h2>", config_table({**summary["identity"]["settings"], "dataset": summary["identity"]["dataset"],
                                           "train_images": summary["identity"]["train_images"],
                                           "test_images": summary["identity"]["test_images"]}),
    ]
    return page("rtool noc overlap", "\n".join(body))


def write_overlap_outputs(result: OverlapResult, out_dir: str | Path) -> dict[str, Path]:
    """Write accuracy.csv, overlap_standard.csv, overlap_bmvc2021.csv, accuracy.png, overlap.png, summary.json
    and report.html into `out_dir`; returns {name: path}."""
    out = prepare_out_dir(out_dir)
    written = {"accuracy_csv": atomic_write_text(out / ACCURACY_CSV, accuracy_csv_text(result))}
    for form in FORMS:
        written[f"overlap_{form}_csv"] = atomic_write_text(out / OVERLAP_CSV[form], overlap_csv_text(result, form))
    written["accuracy_png"] = plot_accuracy(result, out / ACCURACY_PNG)
    written["overlap_png"] = plot_overlap(result, out / OVERLAP_PNG)
    files = [p.relative_to(out).as_posix() for p in written.values()] + [SUMMARY_JSON, REPORT_HTML]
    summary = overlap_summary(result, files)
    written["summary_json"] = atomic_write_json(out / SUMMARY_JSON, summary)
    written["report_html"] = atomic_write_text(out / REPORT_HTML, render_overlap_html(result, summary))
    return written


def format_overlap_text(result: OverlapResult) -> str:
    """What the CLI prints: the clean model under each corruption vs the model trained on it, then the overlap."""
    clean = result.clean_row()
    rows = [("tested on", "clean model", "trained on it", "gain", "its clean accuracy")]
    rows.append(("none (clean)", f"{float(clean[0]):.3f}", "", "", ""))
    for k, c in enumerate(result.corruptions):
        rows.append((c, f"{float(clean[k + 1]):.3f}", f"{float(result.diagonal()[k]):.3f}",
                     f"{float(result.gains()[k]):+.3f}", f"{float(result.accuracy[k + 1, 0]):.3f}"))
    lines = ["top-1 accuracy (clean model = row none of the accuracy matrix; trained on it = its diagonal; "
             "its clean accuracy = column none):", text_table(rows, left={0})]
    form = result.settings.form
    names = result.corruptions
    header = ("", *names)
    overlap = [header] + [(r, *(format_number(v, OVERLAP_DIGITS) for v in row))
                          for r, row in zip(names, result.overlap.tolist())]
    lines += ["", f"overlap matrix ({form} form; 1 = same robustness, 0 = independent):",
              text_table(overlap, left={0})]
    if result.undefined[form]:
        lines.append(f"undefined (training on it did not raise accuracy on it): {', '.join(result.undefined[form])}")
    return "\n".join(lines)
