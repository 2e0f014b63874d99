"""report.html of `rtool detect eval`: one page, no scripts or external assets; the figures by relative path."""
from __future__ import annotations

from html import escape

from rtool.detect.fitted import SCORES
from rtool.report.detect.tables import METRIC_COLUMNS
from rtool.report.html import config_table, file_links, page, table
from rtool.report.numbers import html_cell

_EXPLANATION = """
<div class="note">
<p><b>What the numbers mean.</b> Every score ranks the model's predictions by how likely they are wrong
(higher = more suspicious); a prediction whose score is above the score's threshold is <b>cancelled</b>
(abstained on). The thresholds were chosen on the validation half when the detector was fitted (where the
recall on wrong and on correct predictions are equal) and are applied unchanged here.
<b>conductance</b>: an MLP on the per-channel layer conductance of the predicted class, fitted on the
model's training-set predictions; <b>lcr</b>: the label change rate, the share of the accepted mutants
(slightly perturbed copies of the model) that predict another class; <b>combined</b>: a small MLP on
[LCR, conductance MLP output], cross-fitted on the validation half. The <b>baselines</b> need nothing but the
logits: 1 − max softmax, −max logit and the softmax entropy. A detector is only worth its cost where it beats
them.</p>
</div>
"""


def _metrics_table(metrics: dict) -> str:
    headers = [("score", True), ("kind", True), ("threshold", False)] + [(h, False) for _, h, _ in METRIC_COLUMNS]
    rows = []
    for name in SCORES:
        m = metrics[name]
        rows.append([escape(name), escape(m["kind"]), html_cell(m["threshold"])]
                    + [html_cell(m[key], 3) for key, _, _ in METRIC_COLUMNS])
    return table(headers, rows, ["flagged" if metrics[n]["kind"] == "detector" else "" for n in SCORES])


def _legend() -> str:
    return table([("column", True), ("meaning", True)], [[escape(h), escape(d)] for _, h, d in METRIC_COLUMNS])


def render_detect_html(summary: dict, *, roc: str, risk_coverage: str, links: dict[str, str]) -> str:
    facts = [("split", summary["split"]), ("images", summary["images"]), ("wrong predictions", summary["wrong"]),
             ("model accuracy", summary["accuracy"]), ("layer", summary["layer"]),
             ("conductance", summary["conductance_method"]), ("accepted mutants", summary["mutants"]["accepted"]),
             ("mutant candidates drawn", summary["mutants"]["candidates_drawn"])]
    facts += [(k, v) for k, v in sorted(summary["identity"].items()) if isinstance(v, (str, int, float))]
    body = f"""<h1>Wrong-prediction detector report</h1>
<p>Files: {file_links(links)}</p>
<h2>Summary</h2>
{table([("", True), ("value", True)], [[escape(k), html_cell(v)] for k, v in facts])}
{_EXPLANATION}
<h2>Detectors and baselines on the {escape(summary["split"])} split</h2>
{_metrics_table(summary["metrics"])}
{_legend()}
<h2>ROC</h2>
<img src="{escape(roc)}" alt="ROC curves of every detector and baseline">
<h2>Risk-coverage</h2>
<img src="{escape(risk_coverage)}" alt="risk-coverage curves of every detector and baseline">
<h2>Configuration</h2>
{config_table(summary.get("config") or {})}"""
    return page("rtool detect report", body)
