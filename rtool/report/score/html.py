"""report.html of `rtool score`: one page, no scripts or external assets; figures are referenced by relative
path, so the output folder can be moved or zipped as a whole."""
from __future__ import annotations

from html import escape

from rtool.report.html import config_table, file_links, page, table
from rtool.report.numbers import html_cell
from rtool.report.score.figures import Overlay

MAX_SKIPPED_ROWS = 500

_EXPLANATION = """
<div class="note">
<p><b>What the numbers mean.</b> For every image a saliency map is computed for its ground-truth class.
The <b>robustness score RS</b> is the share of the map's total energy that lies inside the ground-truth
boxes (the union of all boxes; no threshold). The <b>class robustness score CRS</b> is the mean RS over the
class's images, correctly classified or not; <code>acc</code> is the class's top-5 accuracy. A high CRS
means the model's evidence lies on the object; a <b>low CRS means the evidence comes from the context</b>
around it (a possibly spurious cue). Classes with CRS below the threshold or among the bottom k are flagged.
The probe (when run) hides the boxes with the normalisation mean and reports the share of the class's
images still predicted top-1 / top-5: a high share confirms that the context alone carries the class.</p>
<p><b>Caveat.</b> CRS tracks box size: a small object leaves most of any blurry saliency map outside its
box, so small objects (balls, switches, nails) rank low whatever the model does, and rankings are nearly
the same across architectures. Compare classes of similar box area (the <code>area</code> column), or use
the <code>size-adjusted</code> column (CRS divided by the mean share of the image inside the boxes; not in
the original paper).</p>
</div>
"""


def _summary_table(summary: dict) -> str:
    s, counts = summary["statistics"], summary["counts"]
    planted = summary.get("planted")
    rows = [
        ("images scored", counts["images"]), ("classes", counts["classes"]), ("images skipped", counts["skipped"]),
        ("mean CRS", s["mean_crs"]), ("median CRS", s["median_crs"]), ("10th percentile CRS", s["p10_crs"]),
        ("90th percentile CRS", s["p90_crs"]), ("classes with CRS < 0.3", s["n_crs_below_0.3"]),
        ("classes with CRS < 0.5", s["n_crs_below_0.5"]), ("mean top-5 accuracy", s["mean_top5_acc"]),
        (f"flagged (CRS < {summary['threshold']:g} or bottom {summary['bottom_k']})", counts["flagged"]),
        ("accurate but non-robust (acc ≥ 0.9, CRS < 0.3)", len(summary["accurate_non_robust"]["classes"])),
    ]
    if planted:
        rows.append(("planted classes", ", ".join(str(c) for c in planted["classes"])))
        rows.append(("planted classes ranked lowest", planted["ranked_lowest"]))
    return table([("", True), ("value", False)], [[escape(k), html_cell(v)] for k, v in rows])


def _lowest_table(rows: list[dict]) -> str:
    probed = any(r["probe_top1"] is not None or r["probe_top5"] is not None for r in rows)
    headers = [("rank", False), ("id", False), ("name", True), ("CRS", False), ("CRS std", False),
               ("acc (top-5)", False), ("top-1", False), ("images", False), ("area", False),
               ("size-adjusted", False), ("flagged", True)]
    if probed:
        headers += [("probe top-1", False), ("probe top-5", False)]
    cells = []
    for r in rows:
        row = [html_cell(r["rank"]), html_cell(r["id"]), escape(r["name"]), html_cell(r["crs"]), html_cell(r["crs_std"]),
               html_cell(r["acc"], 2), html_cell(r["top1"], 2), html_cell(r["n"]), html_cell(r["area"], 3),
               html_cell(r["size_adjusted"], 3), html_cell(r["flagged"])]
        if probed:
            row += [html_cell(r["probe_top1"], 2), html_cell(r["probe_top5"], 2)]
        cells.append(row)
    return table(headers, cells, ["flagged" if r["flagged"] else "" for r in rows])


def _skipped(summary: dict) -> str:
    skipped = summary["skipped"]
    if not skipped:
        return "<p>No image was skipped.</p>"
    shown = skipped[:MAX_SKIPPED_ROWS]
    listed = table([("image", True), ("reason", True)], [[escape(s["key"]), escape(s["reason"])] for s in shown])
    more = len(skipped) - len(shown)
    return listed + (f"<p>… and {more} more (all are listed in summary.json).</p>" if more > 0 else "")


def _overlays(overlays: list[tuple[Overlay, str]]) -> str:
    if not overlays:
        return "<p>No overlays (no dataset was given to the writer).</p>"
    parts = ["<p>Each panel: an image of the class (lowest RS first) with its saliency map as a heat overlay "
             "(red = most salient) and the ground-truth boxes outlined in white.</p>"]
    for overlay, rel in overlays:
        parts.append(f"<h3>#{overlay.rank} {escape(overlay.name)} (id {overlay.class_id}), CRS {overlay.crs:.4f}</h3>"
                     f'<img src="{escape(rel)}" alt="saliency overlays of {escape(overlay.name)}">')
    return "\n".join(parts)


def render_score_html(summary: dict, *, chart: str, overlays: list[tuple[Overlay, str]], links: dict[str, str]) -> str:
    """The page. `chart` and the overlay paths are relative to the page; `links`: {title: relative path}."""
    accurate = summary["accurate_non_robust"]["classes"]
    accurate_html = ("<p>" + ", ".join(f"{c['id']} {escape(c['name'])} (acc {c['acc']:.2f}, CRS {c['crs']:.4f})"
                                        for c in accurate) + "</p>") if accurate else "<p>none</p>"
    body = f"""<h1>Class robustness score report</h1>
<p>Files: {file_links(links)}</p>
<h2>Summary</h2>
{_summary_table(summary)}
{_EXPLANATION}
<h2>Lowest classes</h2>
{_lowest_table(summary["lowest"])}
<h2>Accurate but non-robust classes</h2>
{accurate_html}
<h2>CRS per class</h2>
<img src="{escape(chart)}" alt="CRS per class, sorted ascending">
<h2>Saliency overlays of the lowest classes</h2>
{_overlays(overlays)}
<h2>Skipped images</h2>
{_skipped(summary)}
<h2>Configuration</h2>
{config_table(summary.get("config") or {})}"""
    return page("rtool score report", body)
