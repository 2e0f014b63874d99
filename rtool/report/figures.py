"""The figure style every analysis shares, and atomic PNG writing.

Figures are built on matplotlib's Agg canvas directly (`Figure` + `FigureCanvasAgg`, no pyplot): nothing
needs a display, no global backend is switched for the caller, and no figure stays registered in pyplot's
figure manager, so a long run cannot accumulate open figures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rtool.engine import atomic_path

DPI = 110
FLAG_COLOUR = "#d62728"     # what the analysis flags (non-robust class, corner case, distrusted prediction)
PLAIN_COLOUR = "#4c72b0"
PLANTED_COLOUR = "#ff7f0e"  # the embedded defaults' planted truth
BOX_COLOUR = "white"        # with a black outline: visible on any background
HEAT_OPACITY = 0.6


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write a PNG atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    figure.clear()
    return Path(path)


def unnormalise(image: torch.Tensor, mean, std) -> np.ndarray:
    """A normalised [C, H, W] image as an [H, W, C] array in [0, 1], for imshow."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    rgb = (image.float().cpu() * std_t + mean_t).clamp(0, 1)
    return rgb.permute(1, 2, 0).numpy()


def heat_rgba(thumbnail: torch.Tensor, height: int, width: int) -> np.ndarray:
    """A uint8 heat map upsampled to the image, as a jet-coloured layer whose opacity grows with the value
    (cold pixels stay clear, so the image remains readable)."""
    small = thumbnail.float()[None, None] / 255.0
    heat = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1).numpy()
    rgba = colormaps["jet"](heat)
    rgba[..., 3] = HEAT_OPACITY * heat
    return rgba


def draw_boxes(ax, boxes: torch.Tensor) -> None:
    """Outline [K, 4] (xmin, ymin, xmax, ymax) half-open pixel boxes."""
    for xmin, ymin, xmax, ymax in torch.as_tensor(boxes).reshape(-1, 4).tolist():
        # Half-open pixel boxes: the pixel centres xmin..xmax-1 are inside, so the edges sit half a pixel out.
        ax.add_patch(Rectangle((xmin - 0.5, ymin - 0.5), xmax - xmin, ymax - ymin, fill=False,
                               edgecolor=BOX_COLOUR, linewidth=1.8,
                               path_effects=[patheffects.withStroke(linewidth=3.4, foreground="black")]))
