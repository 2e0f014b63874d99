"""Semantic maps of many objects under one model (spec §10): one resumable shard per object, split over
torchrun ranks, then the per-class average maps and the "data semantic map" (the mean over every object).

An object is named by an `ObjectSpec` (its mesh source, true class and group), so a shard can be recomputed
from the spec alone and the job key changes whenever the list, the model or the grid changes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

import rtool
from rtool.engine import run_sharded, stable_hash
from rtool.errors import UsageError
from rtool.models.request import model_fingerprint
from rtool.render import Mesh, load_obj, procedural_mesh
from rtool.semantic.maps import MapSettings, SemanticMap, average_map, map_dict, map_from_dict, semantic_map
from rtool.semantic.views import ViewPreprocess, ViewScore

PROCEDURAL = "procedural:"


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a multi-object run. source: an OBJ path or "procedural:<name>"; true_class: the model's
    index of its class; group: the name its class is averaged under; shape_id: its name in the outputs."""

    source: str
    true_class: int
    group: str
    shape_id: str

    def load(self) -> Mesh:
        if self.source.startswith(PROCEDURAL):
            return procedural_mesh(self.source[len(PROCEDURAL):])
        return load_obj(self.source)


@dataclass(frozen=True)
class ObjectMaps:
    """The map of every object, in the order of `objects`."""

    objects: tuple[ObjectSpec, ...]
    maps: tuple[SemanticMap, ...]
    network_name: str

    def groups(self) -> list[str]:
        """Class groups in first-seen order."""
        return list(dict.fromkeys(spec.group for spec in self.objects))

    def class_average(self, group: str) -> SemanticMap:
        """The per-class average map: the cell-wise mean over the class's objects."""
        chosen = [m for spec, m in zip(self.objects, self.maps) if spec.group == group]
        if not chosen:
            raise UsageError(f"no objects of class {group!r}; expected one of {', '.join(self.groups())}")
        return average_map(chosen)

    def data_map(self) -> SemanticMap:
        """Spec §10's "data semantic map" under this network: the mean over every object's map."""
        return average_map(list(self.maps))


def object_maps(model: nn.Module, objects: list[ObjectSpec], preprocess: ViewPreprocess,
                settings: MapSettings = MapSettings(), *, network_name: str, device: torch.device | str = "cpu",
                out_dir: str | Path | None = None, quiet: bool = True) -> ObjectMaps | None:
    """The semantic map of each object. With `out_dir`, each object's map is a shard saved as it finishes and
    reused by a rerun; under torchrun the objects are split over the ranks and rank 0 gets the result (the
    others None)."""
    if not objects:
        raise UsageError("no objects to map: expected at least one")
    device = torch.device(device)
    model = model.to(device).eval()

    def compute(start: int, stop: int) -> list[dict]:
        records = []
        for spec in objects[start:stop]:
            f = ViewScore(model, spec.load(), spec.true_class, preprocess, batch_size=settings.views_per_batch,
                          device=device)
            records.append(map_dict(semantic_map(f, settings), spec.true_class, network_name, spec.shape_id))
        return records

    key = "semantic-maps-" + stable_hash({
        "rtool": rtool.__version__, "model": model_fingerprint(model), "preprocess": asdict(preprocess),
        "settings": asdict(settings), "objects": [asdict(spec) for spec in objects], "device": device.type})
    records = run_sharded(len(objects), compute, out_dir=out_dir, job_key=key, shard_size=1,
                          merge=lambda shards: [r for shard in shards for r in shard], quiet=quiet,
                          desc="semantic maps")
    if records is None:
        return None
    return ObjectMaps(tuple(objects), tuple(map_from_dict(r) for r in records), network_name)


def shapenet_objects(root: str | Path, class_nbs: list[int], max_objects: int | None = None) -> list[ObjectSpec]:
    """The objects of the given classes of a ShapeNet-layout folder (sorted ids, the first `max_objects` of
    each class), with the spec §2 class -> ImageNet index mapping as their true class."""
    from rtool.render.shapenet import MODEL_FILE, class_folder, model_ids, semantic_class

    objects = []
    for class_nb in class_nbs:
        entry = semantic_class(class_nb)
        ids = model_ids(root, class_nb)
        if not ids:
            raise UsageError(f"{class_folder(root, class_nb)}: no <id>/{MODEL_FILE} inside; expected ShapeNet "
                             f"objects of class {class_nb} ({entry.folder})")
        folder = class_folder(root, class_nb)
        objects += [ObjectSpec(str(folder / model_id / MODEL_FILE), entry.imagenet_index, entry.folder, model_id)
                    for model_id in ids[:max_objects]]
    return objects
