"""The bar chart of `rtool noc mce`: CE per corruption, with the reference's 100 and the mCE marked."""
from __future__ import annotations

import math
from pathlib import Path

from rtool.noc.results import MceResult
from rtool.report.figures import FLAG_COLOUR, PLAIN_COLOUR, new_figure, save_figure


def plot_ce(result: MceResult, path: str | Path) -> Path:
    names = list(result.names)
    values = [0.0 if math.isnan(s.ce) else s.ce for s in result.scores]
    figure = new_figure(max(4.0, 0.55 * len(names) + 1.5), 3.6)
    ax = figure.add_subplot(1, 1, 1)
    colours = [FLAG_COLOUR if v > 100 else PLAIN_COLOUR for v in values]
    ax.bar(range(len(names)), values, color=colours)
    for i, s in enumerate(result.scores):
        if math.isnan(s.ce):
            ax.text(i, 1, "n/a", ha="center", va="bottom", fontsize=7)
    ax.axhline(100, color="black", linewidth=0.8, linestyle="--", label="reference (100)")
    if not math.isnan(result.mce):
        ax.axhline(result.mce, color="#2ca02c", linewidth=1.2, label=f"mCE {result.mce:.1f}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"CE ({result.ce_form}, %)")
    ax.set_title(f"{result.benchmark}: CE per corruption vs {result.reference}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return save_figure(figure, path)
