"""Text tables of a `ScoreResult`: the per-class CSV in the authors' format, the per-image CSV and the short
table `rtool score` prints.

classes.csv follows the authors' published files byte for byte in its first four columns: `;` separator,
CRLF line ends, header `id;acc;crs;name`, values with 4 decimals, rows in class-id order. rtool's extra
columns come after them, so a reader of the authors' files can read ours.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from rtool.errors import UsageError
from rtool.report.numbers import format_number, text_table
from rtool.score.results import ClassScore, ScoreResult

AUTHOR_COLUMNS = ("id", "acc", "crs", "name")
EXTRA_COLUMNS = ("top1", "n", "crs_std", "area", "size_adjusted", "nan_maps", "rank", "flagged",
                 "probe_top1", "probe_top5")
IMAGE_CSV_COLUMNS = ("key", "label", "name", "rs", "top1", "top5", "pred", "area", "nan_map")

ClassNames = Sequence[str] | Mapping[int, str]


def csv_names_by_id(result: ScoreResult, class_csv_names: ClassNames | None = None) -> dict[int, str]:
    """The name column of every scored class: `class_csv_names[id]` when given, else the class name."""
    if class_csv_names is None:
        return {c.id: c.name for c in result.classes}
    names = {}
    for c in result.classes:
        try:
            names[c.id] = str(class_csv_names[c.id])
        except (IndexError, KeyError):
            raise UsageError(f"class_csv_names has no name for class id {c.id} ({c.name}); "
                             f"expected a name for every scored class id") from None
    return names


def _writer(buffer: io.StringIO) -> csv.writer:
    # QUOTE_MINIMAL quotes only fields holding ';', '"' or line breaks: none of the authors' names do.
    return csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def classes_csv_text(result: ScoreResult, class_csv_names: ClassNames | None = None, *,
                     extra_columns: bool = True) -> str:
    """classes.csv: `id;acc;crs;name` exactly as the authors print it, then rtool's columns (optional)."""
    names = csv_names_by_id(result, class_csv_names)
    rank = {cid: i + 1 for i, cid in enumerate(result.ranking)}
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(AUTHOR_COLUMNS + (EXTRA_COLUMNS if extra_columns else ()))
    for c in sorted(result.classes, key=lambda c: c.id):
        row = [str(c.id), format_number(c.acc), format_number(c.crs), names[c.id]]
        if extra_columns:
            row += [format_number(c.top1), str(c.n), format_number(c.crs_std), format_number(c.area),
                    format_number(c.size_adjusted), str(c.nan_maps), str(rank.get(c.id, "")), _flag(c.flagged),
                    format_number(c.probe_top1), format_number(c.probe_top5)]
        writer.writerow(row)
    return buffer.getvalue()


def images_csv_text(result: ScoreResult, class_csv_names: ClassNames | None = None) -> str:
    """images.csv: one row per scored image, in scoring order, same dialect as classes.csv."""
    names = csv_names_by_id(result, class_csv_names)
    img = result.images
    columns = zip(img.keys, img.label.tolist(), img.rs.tolist(), img.top1.tolist(), img.top5.tolist(),
                  img.pred.tolist(), img.area.tolist(), img.nan_map.tolist())
    buffer = io.StringIO()
    writer = _writer(buffer)
    writer.writerow(IMAGE_CSV_COLUMNS)
    for key, label, rs, top1, top5, pred, area, nan_map in columns:
        writer.writerow([key, str(label), names.get(label, str(label)), format_number(rs, 6), _flag(top1),
                         _flag(top5), str(pred), format_number(area, 6), _flag(nan_map)])
    return buffer.getvalue()


def lowest_classes(result: ScoreResult, n: int) -> list[tuple[int, ClassScore]]:
    """(rank, class) of the `n` lowest-CRS classes, rank starting at 1."""
    by_id = result.by_id()
    return [(i + 1, by_id[cid]) for i, cid in enumerate(result.ranking[:max(n, 0)])]


def probe_text(c: ClassScore) -> str:
    if c.probe_top1 is None and c.probe_top5 is None:
        return "-"
    return f"{format_number(c.probe_top1, 2) or '-'}/{format_number(c.probe_top5, 2) or '-'}"


def format_lowest_table(result: ScoreResult, n: int = 10) -> str:
    """The short table `rtool score` prints: the `n` lowest-CRS classes (probe = share still predicted
    top-1/top-5 with the object hidden, `-` when not probed)."""
    rows = [("rank", "id", "name", "CRS", "acc", "flagged", "probe t1/t5")]
    for rank, c in lowest_classes(result, n):
        name = c.name if len(c.name) <= 32 else c.name[:31] + "…"
        rows.append((str(rank), str(c.id), name, format_number(c.crs), format_number(c.acc, 2),
                     "yes" if c.flagged else "no", probe_text(c)))
    return text_table(rows, left={2, 5})  # text columns align left, numbers right
