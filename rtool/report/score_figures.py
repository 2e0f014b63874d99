"""Figures of `rtool score`: the CRS chart and the saliency overlays of the lowest classes.

Figures are built on matplotlib's Agg canvas directly (`Figure` + `FigureCanvasAgg`, no pyplot): nothing
needs a display, no global backend is switched for the caller, and no figure stays registered in pyplot's
figure manager, so a long run cannot accumulate open figures.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rtool.data.shapes import ShapesDataset
from rtool.engine import atomic_path
from rtool.score.results import ScoreResult

FLAG_COLOUR = "#d62728"
PLAIN_COLOUR = "#4c72b0"
PLANTED_COLOUR = "#ff7f0e"
BOX_COLOUR = "white"  # with a black outline: visible on any background
SINGLE_PANEL_MAX = 40  # up to this many classes every bar is labelled; beyond it: curve + lowest bars
LOWEST_BARS = 25
DPI = 110
HEAT_OPACITY = 0.6


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write a PNG atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    figure.clear()
    return Path(path)


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
        figure = _new_figure(6, 2)
        figure.text(0.5, 0.5, "no scored classes", ha="center", va="center")
        return save_figure(figure, Path(path))
    if len(ids) <= SINGLE_PANEL_MAX:
        figure = _new_figure(max(6.0, 0.35 * len(ids) + 2), 4.5)
        ax = figure.add_subplot()
        _bars(ax, result, ids, horizontal=False)
        ax.set_title(f"Class robustness score, lowest first ({len(ids)} classes)\n{legend}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
        return save_figure(figure, Path(path))

    by_id = result.by_id()
    lowest = ids[:LOWEST_BARS]
    figure = _new_figure(10, 4 + 0.22 * len(lowest))
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


def dataset_key_index(dataset, wanted=None) -> dict[str, int]:
    """{image key: dataset index} without decoding images where the dataset allows it.

    On-disk datasets list `entries` with keys; the shapes dataset names item i `<prefix>/<i:06d>` (the prefix
    is read from item 0 and checked on the last item). Anything else is scanned item by item, stopping once
    every key in `wanted` (if given) is found.
    """
    entries = getattr(dataset, "entries", None)
    if entries is not None:
        return {entry.key: i for i, entry in enumerate(entries)}
    n = len(dataset)
    if isinstance(dataset, ShapesDataset) and n:
        prefix = dataset[0].key.rsplit("/", 1)[0]
        if dataset[n - 1].key == f"{prefix}/{n - 1:06d}":
            return {f"{prefix}/{i:06d}": i for i in range(n)}
    remaining = set(wanted) if wanted is not None else None
    found: dict[str, int] = {}
    for i in range(n):
        key = dataset[i].key
        found[key] = i
        if remaining is not None:
            remaining.discard(key)
            if not remaining:
                break
    return found


def overlay_file_name(rank: int, name: str, width: int = 2) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "class"
    return f"{rank:0{width}d}_{safe}.png"


def _unnormalise(image: torch.Tensor, mean, std) -> np.ndarray:
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    rgb = (image.float().cpu() * std_t + mean_t).clamp(0, 1)
    return rgb.permute(1, 2, 0).numpy()


def _heat_rgba(thumbnail: torch.Tensor, height: int, width: int) -> np.ndarray:
    """The saliency thumbnail upsampled to the image, as a jet-coloured layer whose opacity grows with the
    saliency (unsalient pixels stay clear, so the image remains readable)."""
    small = thumbnail.float()[None, None] / 255.0
    heat = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
    rgba = colormaps["jet"](heat)
    rgba[..., 3] = HEAT_OPACITY * heat
    return rgba


def _draw_boxes(ax, boxes: torch.Tensor) -> None:
    for xmin, ymin, xmax, ymax in torch.as_tensor(boxes).reshape(-1, 4).tolist():
        # Half-open pixel boxes: the pixel centres xmin..xmax-1 are inside, so the edges sit half a pixel out.
        ax.add_patch(Rectangle((xmin - 0.5, ymin - 0.5), xmax - xmin, ymax - ymin, fill=False,
                               edgecolor=BOX_COLOUR, linewidth=1.8,
                               path_effects=[patheffects.withStroke(linewidth=3.4, foreground="black")]))


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
    index = dataset_key_index(dataset, {images.keys[r] for _, _, rows in chosen for r in rows})
    mean = getattr(dataset, "mean", (0.0, 0.0, 0.0))
    std = getattr(dataset, "std", (1.0, 1.0, 1.0))
    names = getattr(dataset, "class_names", None)
    width = max(2, len(str(chosen[-1][0])))
    written = []
    for rank, cid, rows in chosen:
        rows = [r for r in rows if images.keys[r] in index]
        if not rows:
            continue
        c = by_id[cid]
        figure = _new_figure(3.0 * len(rows), 3.6)
        axes = figure.subplots(1, len(rows), squeeze=False)[0]
        for ax, row in zip(axes, rows):
            sample = dataset[index[images.keys[row]]]
            picture = _unnormalise(sample.image, mean, std)
            height, width_px = picture.shape[:2]
            ax.imshow(picture)
            if images.thumbnails is not None:
                ax.imshow(_heat_rgba(images.thumbnails[row], height, width_px))
            _draw_boxes(ax, sample.boxes)
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
