"""Figures of `rtool score`: the CRS chart and the saliency overlays of the lowest classes."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtool.data.protocol import key_index, normalisation
from rtool.report.figures import (FLAG_COLOUR, PLAIN_COLOUR, PLANTED_COLOUR, draw_boxes, heat_rgba, new_figure,
                                  save_figure, unnormalise)
from rtool.score.results import ScoreResult

SINGLE_PANEL_MAX = 40  # up to this many classes every bar is labelled; beyond it: curve + lowest bars
LOWEST_BARS = 25


def _label(result: ScoreResult, cid: int, name: str) -> str:
    planted = result.planted or ()
    return f"{cid} {name}" + (" *" if cid in planted else "")


def _bars(ax, result: ScoreResult, ids: list[int], horizontal: bool) -> None:
    by_id = result.by_id()
    crs = [by_id[c].crs for c in ids]
    colours = [FLAG_COLOUR if by_id[c].flagged else PLAIN_COLOUR for c in ids]
    labels = [_label(result, c, by_id[c].name) for c in ids]
    positions = np.arange(len(ids))
    if horizontal:
        ax.barh(positions, crs, color=colours)
        ax.set_yticks(positions, labels, fontsize=8)
        ax.invert_yaxis()  # lowest at the top
        ax.axvline(result.threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {result.threshold:g}")
        ax.set_xlabel("CRS")
        ax.set_xlim(0, max(1.0, max(crs, default=0)))
    else:
        ax.bar(positions, crs, color=colours)
        ax.set_xticks(positions, labels, rotation=60, ha="right", fontsize=8)
        ax.axhline(result.threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {result.threshold:g}")
        ax.set_ylabel("CRS")
        ax.set_ylim(0, max(1.0, max(crs, default=0)))


def plot_crs(result: ScoreResult, path: str | Path) -> Path:
    """Bar chart of CRS per class, sorted ascending, flagged classes in red, the threshold as a dashed line.

    Many classes (ImageNet's 1000): the sorted CRS curve of all classes, and below it the lowest 25 as
    labelled bars. Planted classes (embedded default) are marked with `*`.
    """
    ids = list(result.ranking)
    legend = "red = flagged (CRS < threshold or in the bottom k)" + ("; * = planted cue" if result.planted else "")
    if not ids:
        figure = new_figure(6, 2)
        figure.text(0.5, 0.5, "no scored classes", ha="center", va="center")
        return save_figure(figure, Path(path))
    if len(ids) <= SINGLE_PANEL_MAX:
        figure = new_figure(max(6.0, 0.35 * len(ids) + 2), 4.5)
        ax = figure.add_subplot()
        _bars(ax, result, ids, horizontal=False)
        ax.set_title(f"Class robustness score, lowest first ({len(ids)} classes)\n{legend}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
        return save_figure(figure, Path(path))

    by_id = result.by_id()
    lowest = ids[:LOWEST_BARS]
    figure = new_figure(10, 4 + 0.22 * len(lowest))
    curve_ax, bars_ax = figure.subplots(2, 1, gridspec_kw={"height_ratios": [3, 0.22 * len(lowest) + 1]})
    crs = np.array([by_id[c].crs for c in ids])
    flagged = np.array([by_id[c].flagged for c in ids])
    positions = np.arange(len(ids))
    curve_ax.plot(positions, crs, color=PLAIN_COLOUR, linewidth=1.5)
    curve_ax.scatter(positions[flagged], crs[flagged], color=FLAG_COLOUR, s=8, zorder=3, label="flagged")
    if result.planted:
        planted = np.isin(np.array(ids), np.array(result.planted))
        curve_ax.scatter(positions[planted], crs[planted], marker="*", color=PLANTED_COLOUR, s=40, zorder=4,
                         label="planted")
    curve_ax.axhline(result.threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {result.threshold:g}")
    curve_ax.set_xlim(-1, len(ids))
    curve_ax.set_ylim(0, max(1.0, float(crs.max())))
    curve_ax.set_xlabel("classes, sorted by CRS")
    curve_ax.set_ylabel("CRS")
    curve_ax.set_title(f"Class robustness score of all {len(ids)} classes, lowest first", fontsize=10)
    curve_ax.legend(loc="upper left", fontsize=8)
    _bars(bars_ax, result, lowest, horizontal=True)
    bars_ax.set_title(f"The {len(lowest)} lowest classes; {legend}", fontsize=10)
    figure.subplots_adjust(hspace=0.35)
    return save_figure(figure, Path(path))


# --- overlays ---------------------------------------------------------------------------------------------

@dataclass
class Overlay:
    rank: int
    class_id: int
    name: str
    crs: float
    path: Path
    keys: list[str]


def overlay_file_name(rank: int, name: str, width: int = 2) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "class"
    return f"{rank:0{width}d}_{safe}.png"


def write_overlays(result: ScoreResult, dataset, folder: str | Path, *, classes: int = 6,
                   per_class: int = 4) -> list[Overlay]:
    """One PNG per class for the `classes` lowest-CRS classes: up to `per_class` of its images (lowest RS
    first) with the saliency map as a heat overlay and the ground-truth boxes; RS and prediction in the titles."""
    folder = Path(folder)
    images = result.images
    by_id = result.by_id()
    chosen: list[tuple[int, int, list[int]]] = []  # (rank, class id, rows of result.images)
    for rank, cid in enumerate(result.ranking[:max(classes, 0)], start=1):
        rows = torch.nonzero(images.label == cid).flatten()
        rows = rows[torch.argsort(images.rs[rows], stable=True)][:max(per_class, 0)]
        if len(rows):
            chosen.append((rank, cid, rows.tolist()))
    if not chosen:
        return []
    index = key_index(dataset, {images.keys[r] for _, _, rows in chosen for r in rows})
    mean, std = normalisation(dataset)
    names = getattr(dataset, "class_names", None)
    width = max(2, len(str(chosen[-1][0])))
    written = []
    for rank, cid, rows in chosen:
        rows = [r for r in rows if images.keys[r] in index]
        if not rows:
            continue
        c = by_id[cid]
        figure = new_figure(3.0 * len(rows), 3.6)
        axes = figure.subplots(1, len(rows), squeeze=False)[0]
        for ax, row in zip(axes, rows):
            sample = dataset[index[images.keys[row]]]
            picture = unnormalise(sample.image, mean, std)
            height, width_px = picture.shape[:2]
            ax.imshow(picture)
            if images.thumbnails is not None:
                ax.imshow(heat_rgba(images.thumbnails[row], height, width_px))
            draw_boxes(ax, sample.boxes)
            ax.set_xlim(-0.5, width_px - 0.5)
            ax.set_ylim(height - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            pred = int(images.pred[row])
            pred_name = names[pred] if names is not None and 0 <= pred < len(names) else str(pred)
            ax.set_title(f"RS {float(images.rs[row]):.3f}\npred: {pred_name[:24]}", fontsize=9)
        figure.suptitle(f"#{rank} {c.name} (id {cid}): CRS {c.crs:.3f}, top-5 acc {c.acc:.2f}", fontsize=10)
        path = save_figure(figure, folder / overlay_file_name(rank, c.name, width))
        written.append(Overlay(rank=rank, class_id=cid, name=c.name, crs=c.crs, path=path,
                               keys=[images.keys[r] for r in rows]))
    return written
