"""Files of `rtool semantic maps`: every object's map, the per-class averages, the data semantic map, a summary
table and (1-D grids) the per-class curves of spec §10."""
from __future__ import annotations

import re
from pathlib import Path

from rtool.engine import atomic_save_torch, atomic_write_text
from rtool.report.figures import new_figure, save_figure
from rtool.report.numbers import csv_text, format_number
from rtool.report.outputs import remove_stale
from rtool.report.semantic.figures import map_figure
from rtool.semantic.collection import ObjectMaps
from rtool.semantic.maps import SemanticMap, map_dict

SUMMARY_COLUMNS = ("group", "shape_id", "true_class", "mean", "max", "share_above_half")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name).strip("._") or "object"


def _row(group: str, shape_id: str, true_class: int | str, heat: SemanticMap) -> list[str]:
    z = heat.scores
    return [group, shape_id, str(true_class), format_number(float(z.mean())), format_number(float(z.max())),
            format_number(float((z > 0.5).float().mean()))]


def summary_csv_text(result: ObjectMaps) -> str:
    """One row per object, then one per class average ("mean" as shape_id), then the data map ("all")."""
    rows = [_row(spec.group, spec.shape_id, spec.true_class, heat) for spec, heat in zip(result.objects, result.maps)]
    rows += [_row(group, "mean", "", result.class_average(group)) for group in result.groups()]
    rows.append(_row("all", "mean", "", result.data_map()))
    return csv_text(rows, SUMMARY_COLUMNS)


def curves_figure(result: ObjectMaps, path: str | Path) -> Path:
    """Per-class average f against azimuth (1-D maps; 2-D maps are averaged over elevation first)."""
    figure = new_figure(8, 3.6)
    ax = figure.add_subplot(1, 1, 1)
    for group in result.groups():
        heat = result.class_average(group)
        ax.plot(heat.azimuths.numpy(), heat.scores.mean(0).numpy(), lw=1.2, label=group)
    ax.set_xlabel("azimuth (°)")
    ax.set_ylabel("mean f(u)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{result.network_name}: per-class average over objects", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(figure, path)


def write_object_maps(result: ObjectMaps, out_dir: str | Path) -> dict[str, Path]:
    """maps/<group>/<shape_id>.pt per object (the spec's map.pt dict), class_<group>.pt/.png, data_map.pt/.png,
    curves.png and summary.csv. Maps of objects no longer in the run are removed."""
    out = Path(out_dir)
    written: dict[str, Path] = {}
    keep: set[Path] = set()
    for spec, heat in zip(result.objects, result.maps):
        path = out / "maps" / _safe(spec.group) / f"{_safe(spec.shape_id)}.pt"
        atomic_save_torch(path, map_dict(heat, spec.true_class, result.network_name, spec.shape_id))
        keep.add(path)
    for folder in {p.parent for p in keep}:
        remove_stale(folder, re.compile(r".*\.pt"), keep)
    for group in result.groups():
        heat = result.class_average(group)
        classes = {spec.true_class for spec in result.objects if spec.group == group}
        true_class = classes.pop() if len(classes) == 1 else -1
        stem = out / f"class_{_safe(group)}"
        written[f"class_{group}"] = atomic_save_torch(stem.with_suffix(".pt"),
                                                      map_dict(heat, true_class, result.network_name, f"mean:{group}"))
        count = sum(spec.group == group for spec in result.objects)
        map_figure(heat, f"{result.network_name} / {group}: mean over {count} objects", stem.with_suffix(".png"))
    data = result.data_map()
    written["data_map"] = atomic_save_torch(out / "data_map.pt", map_dict(data, -1, result.network_name, "mean:all"))
    map_figure(data, f"{result.network_name}: data semantic map ({len(result.objects)} objects)", out / "data_map.png")
    written["curves"] = curves_figure(result, out / "curves.png")
    written["summary"] = atomic_write_text(out / "summary.csv", summary_csv_text(result))
    return written
