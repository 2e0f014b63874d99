"""report.html of `rtool noc mce`: one page, the chart by relative path, no scripts or external assets."""
from __future__ import annotations

from html import escape

from rtool.report.html import config_table, file_links, page, table
from rtool.report.numbers import html_cell

_EXPLANATION = {
    "imagenet-noc": """<div class="note"><p><b>What the numbers mean.</b> Each image is corrupted once per
corruption with its own random severity (seeded by the image's index). <b>error</b> is the top-1 error under
the corruption. The <b>relative CE</b> is 100 &middot; (E(c) &minus; E(clean)) / (E<sub>ref</sub>(c) &minus;
E<sub>ref</sub>(clean)): the share of accuracy lost to the corruption, compared with the reference model's
loss; the <b>absolute CE</b> is 100 &middot; E(c) / E<sub>ref</sub>(c). 100 = as robust as the reference,
lower is better; <b>mCE</b> is the mean over the benchmark's corruptions. The hard-coded reference tables
come from the authors' code; rtool's corruptions do not match theirs bit for bit, so a
<code>measure:&lt;model&gt;</code> reference (run on the very same corrupted images) is the fair comparison.</p></div>""",
    "imagenet-c": """<div class="note"><p><b>What the numbers mean.</b> ImageNet-C (Hendrycks &amp;
Dietterich 2019): <b>error</b> is the top-1 error averaged over the five severities; CE = 100 &middot;
&Sigma;<sub>s</sub> E(s, c) / &Sigma;<sub>s</sub> E<sub>AlexNet</sub>(s, c); 100 = as robust as AlexNet,
lower is better; <b>mCE</b> is the mean over the corruptions scored (the standard one uses all 15).</p></div>""",
}


def render_mce_html(summary: dict, chart: str, links: dict[str, str]) -> str:
    rows = summary["corruptions"]
    severity_columns = [k for k in (rows[0] if rows else {}) if k.startswith("error_s")]
    headers = [("corruption", True), ("error", False), ("accuracy", False), ("reference error", False),
               ("CE", False), ("images", False)] + [(k.replace("error_", "error "), False) for k in severity_columns]
    cells = [[escape(r["corruption"]), html_cell(r["error"]), html_cell(r["accuracy"]), html_cell(r["reference_error"]),
              html_cell(r["ce"], 1), html_cell(r["n"])] + [html_cell(r[k]) for k in severity_columns] for r in rows]
    facts = [("benchmark", summary["benchmark"]), ("mCE", summary["mce"]), ("CE form", summary["ce_form"]),
             ("reference", summary["reference"]), ("clean error", summary["clean_error"]),
             ("reference clean error", summary["reference_clean_error"]), ("images per pass", summary["n_images"])]
    if summary["undefined"]:
        facts.append(("CE undefined (left out of the mCE)", ", ".join(summary["undefined"])))
    body = (f"<h1>rtool noc mce: {escape(summary['benchmark'])}</h1>"
            + table([("", True), ("value", False)], [[escape(k), html_cell(v)] for k, v in facts])
            + _EXPLANATION.get(summary["benchmark"], "")
            + f'<h2>CE per corruption</h2><img src="{escape(chart)}" alt="CE per corruption">'
            + table(headers, cells)
            + "<h2>Files</h2><p>" + file_links(links) + "</p>"
            + "<h2>Settings</h2>" + config_table(summary["config"]))
    return page(f"rtool noc mce ({summary['benchmark']})", body)
