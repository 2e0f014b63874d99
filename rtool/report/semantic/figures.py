"""Semantic-map heatmap (spec §5/§10: pcolormesh, RdBu, vmin 0, vmax max z), regions over it, convergence."""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.patches import Rectangle

from rtool.report.figures import PLANTED_COLOUR, new_figure, save_figure
from rtool.semantic.maps import SemanticMap
from rtool.semantic.regions import OptimResult

METHOD_COLOURS = {"naive": "#2ca02c", "OIR_B": "#9467bd", "OIR_W": "#d62728"}


def _draw_map(ax, heat: SemanticMap, title: str):
    if heat.grid == "1d":
        ax.plot(heat.azimuths.numpy(), heat.scores[0].numpy(), color="black", lw=1)
        ax.set_xlabel("azimuth (°)")
        ax.set_ylabel("f(u)")
        ax.set_ylim(0, 1.02)
    else:
        step_az = float(heat.azimuths[1] - heat.azimuths[0]) if heat.azimuths.numel() > 1 else 1.0
        step_el = float(heat.elevations[1] - heat.elevations[0]) if heat.elevations.numel() > 1 else 1.0
        az_edges = torch.cat([heat.azimuths - step_az / 2, heat.azimuths[-1:] + step_az / 2]).numpy()
        el_edges = torch.cat([heat.elevations - step_el / 2, heat.elevations[-1:] + step_el / 2]).numpy()
        mesh = ax.pcolormesh(az_edges, el_edges, heat.scores.numpy(), cmap="RdBu", vmin=0,
                             vmax=max(float(heat.scores.max()), 1e-6))
        ax.figure.colorbar(mesh, ax=ax, label="f(u)")
        ax.set_xlabel("azimuth (°)")
        ax.set_ylabel("elevation (°)")
    ax.set_title(title, fontsize=10)


def map_figure(heat: SemanticMap, title: str, path: str | Path) -> Path:
    figure = new_figure(8, 3.6)
    _draw_map(figure.add_subplot(1, 1, 1), heat, title)
    return save_figure(figure, path)


def regions_figure(result: OptimResult, heat: SemanticMap | None, title: str, path: str | Path,
                   planted: tuple[torch.Tensor, torch.Tensor] | None = None) -> Path:
    """Each method's final box per start point (rectangles in 2-D, intervals in 1-D) over the map."""
    figure = new_figure(8, 3.8)
    ax = figure.add_subplot(1, 1, 1)
    dims = result.start_points.shape[1]
    if heat is not None:
        _draw_map(ax, heat, title)
    else:
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, 360)
        ax.set_ylim(*((-10, 90) if dims == 2 else (0, 1.02)))
    if planted is not None and dims == 2:
        low, high = planted
        ax.add_patch(Rectangle(low.tolist(), *(high - low).tolist(), fill=False, ls="--", lw=1.5,
                               edgecolor=PLANTED_COLOUR, label="planted"))
    for index, (method, regions) in enumerate(result.regions.items()):
        colour = METHOD_COLOURS.get(method, "black")
        for k, region in enumerate(regions):
            label = method if k == 0 else None
            a, b = region.a.tolist(), region.b.tolist()
            if dims == 2:
                ax.add_patch(Rectangle((a[0], a[1]), b[0] - a[0], b[1] - a[1], fill=False, lw=1.5,
                                       edgecolor=colour, label=label))
            else:
                level = 0.1 + 0.05 * index
                ax.plot([a[0], b[0]], [level, level], color=colour, lw=3, label=label)
    points = result.start_points
    ax.scatter(points[:, 0].numpy(), (points[:, 1] if dims == 2 else torch.full((len(points),), 0.05)).numpy(),
               marker="x", color="black", zorder=5, label="start")
    ax.legend(fontsize=7, loc="upper right")
    return save_figure(figure, path)


def convergence_figure(result: OptimResult, path: str | Path) -> Path:
    """a and b against iteration (one panel per method and start point), loss on a twin axis."""
    methods = list(result.regions)
    points = result.start_points.shape[0]
    figure = new_figure(3.2 * points, 2.4 * len(methods))
    for row, method in enumerate(methods):
        for col, region in enumerate(result.regions[method]):
            ax = figure.add_subplot(len(methods), points, row * points + col + 1)
            steps = torch.arange(region.trace.shape[0]).numpy()
            for dim, name in enumerate(("az", "el")[:region.trace.shape[2]]):
                ax.plot(steps, region.trace[:, 0, dim].numpy(), lw=1, label=f"a {name}")
                ax.plot(steps, region.trace[:, 1, dim].numpy(), lw=1, label=f"b {name}")
            twin = ax.twinx()
            twin.plot(steps, region.loss.numpy(), color="grey", lw=0.8, ls=":")
            twin.tick_params(labelsize=6)
            ax.tick_params(labelsize=6)
            ax.set_title(f"{method}, start {tuple(round(v, 1) for v in region.start.tolist())}", fontsize=8)
            if row == 0 and col == 0:
                ax.legend(fontsize=6)
    figure.tight_layout()
    return save_figure(figure, path)
