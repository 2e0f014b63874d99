"""Tables, figures and HTML reports. Analyses return results; this package (called by the CLI or a user's
script) writes them: CSV/JSON for machines, PNG and HTML for people, every file atomically.

Shared by every analysis: `figures` (style, atomic PNGs), `html` (page skeleton, tables), `numbers` (how
numbers are written), `outputs` (the output folder). Each analysis has its writers in `report/<analysis>/`.
"""
from rtool.report.figures import new_figure, save_figure
from rtool.report.html import config_table, page, table
from rtool.report.numbers import format_number, html_cell, jsonable, text_table
from rtool.report.outputs import prepare_out_dir, remove_stale

__all__ = [
    "config_table", "format_number", "html_cell", "jsonable", "new_figure", "page", "prepare_out_dir",
    "remove_stale", "save_figure", "table", "text_table",
]
