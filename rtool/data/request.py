"""Which box dataset a run reads, as the CLI (or a script) asks for it, and opening it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rtool.data.folder import BoxFolder
from rtool.data.imagenet import ImageNetVal
from rtool.data.shapes import ShapesConfig
from rtool.data.transforms import Preprocess
from rtool.data.voc import VOCPairs
from rtool.errors import UsageError

# `shapes` is generated (the embedded default); the others are read from --data-dir.
BOX_DATASETS = ("shapes", "imagenet", "voc", "folder")


@dataclass
class DataRequest:
    dataset: str = "shapes"
    data_dir: Path | None = None
    bbox_dir: Path | None = None
    voc_year: str = "2007"
    image_set: str = "val"
    limit_per_class: int | None = None
    image_size: int | None = None     # parity S; default: the model's crop size
    include_difficult: bool = False
    shapes: ShapesConfig = field(default_factory=ShapesConfig)

    def __post_init__(self) -> None:
        if self.dataset not in BOX_DATASETS:
            raise UsageError(f"unknown dataset {self.dataset!r}; expected one of {', '.join(BOX_DATASETS)}")


def open_box_dataset(data: DataRequest, preprocess: Preprocess):
    """The on-disk dataset `data` names (imagenet, voc or folder), read with `preprocess`."""
    if data.dataset == "shapes":
        raise UsageError("the shapes dataset is generated, not read from disk; use rtool.data.load_shapes")
    if data.data_dir is None:
        raise UsageError(f"--data-dir is required for --dataset {data.dataset}")
    if data.dataset == "imagenet":
        return ImageNetVal(data.data_dir, bbox_dir=data.bbox_dir, preprocess=preprocess,
                           limit_per_class=data.limit_per_class)
    if data.dataset == "voc":
        return VOCPairs(data.data_dir, year=data.voc_year, image_set=data.image_set, preprocess=preprocess,
                        skip_difficult=not data.include_difficult)
    return BoxFolder(data.data_dir, preprocess)
