"""The semantic-robustness data: 10 ShapeNetCore-v2 classes, their ImageNet classes and the folder layout
`<root>/<class name or synset>/<model id>/models/model_normalized.obj` (semantic spec §2)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rtool.errors import UsageError
from rtool.render.mesh import Mesh
from rtool.render.obj import load_obj


@dataclass(frozen=True)
class SemanticClass:
    class_nb: int          # the original code's class number
    folder: str            # the original `scale/` folder name
    # ShapeNetCore-v2 synset id of the matching category, accepted as the folder name besides `folder`
    # (cup -> ShapeNet's "mug", vase -> its "jar"; toilet has no ShapeNetCore category: None)
    synset: str | None
    imagenet_index: int    # index into the 1000 ImageNet classes
    imagenet_name: str     # torchvision's category name at that index (checked by tests)


SEMANTIC_CLASSES: tuple[SemanticClass, ...] = (
    SemanticClass(0, "aeroplane", "02691156", 404, "airliner"),
    SemanticClass(1, "bathtub", "02808440", 435, "bathtub"),
    SemanticClass(2, "bench", "02828884", 703, "park bench"),
    SemanticClass(3, "bottle", "02876657", 898, "water bottle"),
    SemanticClass(4, "chair", "03001627", 559, "folding chair"),
    SemanticClass(5, "cup", "03797390", 968, "cup"),
    SemanticClass(6, "piano", "03928116", 579, "grand piano"),
    SemanticClass(7, "rifle", "04090263", 413, "assault rifle"),
    SemanticClass(8, "vase", "03593526", 883, "vase"),
    SemanticClass(9, "toilet", None, 861, "toilet seat"),
)
MODEL_FILE = Path("models") / "model_normalized.obj"


def semantic_class(key: int | str) -> SemanticClass:
    """By class number (0-9), folder name or synset id."""
    for entry in SEMANTIC_CLASSES:
        if key in (entry.class_nb, str(entry.class_nb), entry.folder, entry.synset):
            return entry
    names = ", ".join(f"{c.class_nb}={c.folder}" for c in SEMANTIC_CLASSES)
    raise UsageError(f"unknown semantic class {key!r}; expected a class number, folder or synset ({names})")


def class_folder(root: str | os.PathLike, key: int | str) -> Path:
    """The class's folder under `root`: its name as in the original `scale/` data, or its ShapeNet synset."""
    entry, root = semantic_class(key), Path(root)
    for name in (entry.folder, entry.synset):
        if name and (root / name).is_dir():
            return root / name
    raise UsageError(f"{root}: no folder {entry.folder!r}" + (f" or {entry.synset!r}" if entry.synset else "")
                     + f" for class {entry.class_nb} ({entry.folder})")


def model_ids(root: str | os.PathLike, key: int | str) -> list[str]:
    """Model ids of a class that hold a mesh file, in the original's order (sorted lexicographically)."""
    folder = class_folder(root, key)
    return sorted(p.name for p in folder.iterdir() if (p / MODEL_FILE).is_file())


def shapenet_mesh_path(root: str | os.PathLike, key: int | str, object_nb: int) -> Path:
    ids = model_ids(root, key)
    if not 0 <= object_nb < len(ids):
        raise UsageError(f"object {object_nb} out of range: {class_folder(root, key)} holds {len(ids)} models "
                         f"with {MODEL_FILE}")
    return class_folder(root, key) / ids[object_nb] / MODEL_FILE


def load_shapenet(root: str | os.PathLike, key: int | str, object_nb: int, **options) -> Mesh:
    """Object `object_nb` (0-based, sorted ids) of a class, read and normalised like the original."""
    return load_obj(shapenet_mesh_path(root, key, object_nb), **options)
