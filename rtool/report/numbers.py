"""How numbers are written in every CSV, JSON file and HTML table rtool produces."""
from __future__ import annotations

import csv
import io
import math
from html import escape

import numpy as np
import torch


def format_number(value: float | None, digits: int = 4) -> str:
    """`0.9600` style for CSV cells; empty for a missing value, `nan` for an undefined one."""
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}f}"


def html_cell(value, digits: int = 4) -> str:
    """An escaped HTML table cell: `–` for missing, yes/no for booleans, fixed decimals for floats."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def jsonable(value):
    """Plain JSON values: tensors and arrays to lists, tuples to lists, NaN/inf to null."""
    if isinstance(value, torch.Tensor):
        return jsonable(value.tolist())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def text_table(rows: list[tuple[str, ...]], left: set[int] = frozenset()) -> str:
    """Rows of cells (the first row is the header) as aligned plain text: columns in `left` align left,
    the others right; trailing spaces stripped. What the CLI prints."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i in left else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


def csv_text(rows: list[list[str]], header: tuple[str, ...] | list[str]) -> str:
    """A `;`-separated CSV with a header row (the authors' separator), `\n` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
