"""Figures of the corner-case experiment: the radii of both phases, and the removed corner cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rtool.corner.experiment import CornerExperiment
from rtool.data.classification import ClassificationData
from rtool.report.figures import FLAG_COLOUR, PLAIN_COLOUR, PLANTED_COLOUR, new_figure, save_figure

GRID_COLUMNS = 10
MAX_PICTURES = 60


def plot_radii(result: CornerExperiment, path: str | Path) -> Path:
    """Box plot of the models' mean radius per phase, each original/retrained pair joined by a line."""
    before = np.array([r.radius.mean_radius for r in result.original])
    after = np.array([r.radius.mean_radius for r in result.retrained])
    figure = new_figure(5.5, 4.2)
    ax = figure.add_subplot()
    ax.boxplot([before, after], positions=[0, 1], widths=0.45)
    ax.set_xticks([0, 1], [f"original ({len(before)})", f"retrained ({len(after)})"])
    for b, a in zip(before, after):
        ax.plot([0, 1], [b, a], color=PLAIN_COLOUR if a >= b else FLAG_COLOUR, alpha=0.5, linewidth=1, marker="o",
                markersize=3)
    c = result.comparison
    ax.set_ylabel("mean DeepFool radius (L2, test set)")
    ax.set_title(f"Robustness radius before/after removing {len(result.corner.indices)} corner cases\n"
                 f"mean {c.mean_before:.4f} → {c.mean_after:.4f} (blue: pair improved)", fontsize=9)
    return save_figure(figure, path)


def plot_corner_cases(result: CornerExperiment, train: ClassificationData, path: str | Path) -> Path:
    """The removed corner cases, most nominated first, titled with index, label and nomination count;
    planted (mislabelled) ones framed in orange."""
    indices = result.corner.indices.tolist()[:MAX_PICTURES]
    counts = result.corner.counts.tolist()
    planted = set(result.planted.tolist()) if result.planted is not None else set()
    columns = min(GRID_COLUMNS, max(len(indices), 1))
    rows = max(1, -(-len(indices) // columns))
    figure = new_figure(1.25 * columns, 1.45 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index, count in zip(axes.flat, indices, counts):
        image = train.images[index].float()
        picture = image[0].numpy() if image.shape[0] == 1 else image.permute(1, 2, 0).numpy()
        ax.imshow(picture, cmap="gray" if image.shape[0] == 1 else None, vmin=0, vmax=1)
        label = train.class_names[int(result.train_labels[index])]
        ax.set_title(f"#{index} '{label}' ×{count}", fontsize=7,
                     color=PLANTED_COLOUR if index in planted else "black")
        if index in planted:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(PLANTED_COLOUR)
                spine.set_linewidth(2.5)
    figure.suptitle("Corner cases removed (label as trained on; ×n = models that nominated it)"
                    + ("; orange = planted mislabel" if planted else ""), fontsize=9)
    return save_figure(figure, path)
