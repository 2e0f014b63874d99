"""The HTML page skeleton every report shares: one self-contained page, no scripts or external assets;
figures are referenced by relative path, so an output folder can be moved or zipped as a whole."""
from __future__ import annotations

import json
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td.text, th.text { text-align: left; }
tr.flagged td { background: #fde8e8; }
.note { background: #f7f7f0; border-left: 4px solid #c9b458; padding: 0.6em 1em; }
img { max-width: 100%; }
code { background: #f2f2f2; padding: 0 0.2em; }
"""


def table(headers: list[tuple[str, bool]], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    """headers: (title, is_text); cells are already escaped HTML; `row_classes[i]` styles row i (`flagged`)."""
    head = "".join(f'<th class="text">{escape(h)}</th>' if text else f"<th>{escape(h)}</th>" for h, text in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="text">{cell}</td>' if text else f"<td>{cell}</td>"
                        for cell, (_, text) in zip(row, headers))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def config_table(config: dict) -> str:
    """The settings a result was made with, one row each."""
    rows = [[escape(str(k)), escape(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v))]
            for k, v in sorted(config.items())]
    return table([("setting", True), ("value", True)], rows) if rows else "<p>none recorded</p>"


def file_links(links: dict[str, str]) -> str:
    """{title: relative path} as a line of links."""
    return " · ".join(f'<a href="{escape(rel)}">{escape(title)}</a>' for title, rel in links.items())


def page(title: str, body: str) -> str:
    """A whole page: `title` in the head, `body` (HTML) as is."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
{body}
</body>
</html>
"""
