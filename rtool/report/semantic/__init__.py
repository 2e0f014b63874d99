"""Figures of `rtool semantic`: the semantic map, the regions over it, and the convergence of each run."""
from rtool.report.semantic.figures import convergence_figure, map_figure, regions_figure

__all__ = ["convergence_figure", "map_figure", "regions_figure"]
