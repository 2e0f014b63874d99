"""Per-corruption rows of `rtool noc mce`: the CSV and the table the CLI prints."""
from __future__ import annotations

import csv
import io

from rtool.data.imagenet_c import SEVERITIES
from rtool.noc.results import MceResult
from rtool.report.numbers import format_number, text_table

CSV_COLUMNS = ("corruption", "error", "accuracy", "reference_error", "ce", "n")


def score_rows(result: MceResult) -> list[dict]:
    """One plain dict per corruption (what the CSV, the JSON summary and the HTML table show)."""
    rows = []
    for s in result.scores:
        row = {"corruption": s.name, "error": s.error, "accuracy": s.accuracy, "reference_error": s.reference_error,
               "ce": s.ce, "n": s.n}
        for severity, value in zip(SEVERITIES, s.severity_errors):
            row[f"error_s{severity}"] = value
        for severity, value in zip(SEVERITIES, s.reference_severity_errors):
            row[f"reference_error_s{severity}"] = value
        rows.append(row)
    return rows


def scores_csv_text(result: MceResult) -> str:
    rows = score_rows(result)
    columns = list(CSV_COLUMNS) + [k for k in (rows[0] if rows else {}) if k not in CSV_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row[c] if isinstance(row[c], (str, int)) else format_number(row[c]) for c in columns])
    return out.getvalue()


def _pct(value: float | None) -> str:
    return "-" if value is None else format_number(100 * value, 1)


def format_scores_table(result: MceResult) -> str:
    """Errors in percent, CE (100 = as robust as the reference), the clean row first for NOC."""
    rows = [("corruption", "error %", "acc %", "ref error %", "CE")]
    if result.clean_error is not None:
        rows.append(("(clean)", _pct(result.clean_error), _pct(1 - result.clean_error),
                     _pct(result.reference_clean_error), ""))
    for s in result.scores:
        rows.append((s.name, _pct(s.error), _pct(s.accuracy), _pct(s.reference_error), format_number(s.ce, 1)))
    rows.append(("mCE", "", "", "", format_number(result.mce, 1)))
    return text_table(rows, left={0})
