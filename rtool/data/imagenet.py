"""ImageNet validation images with their ground-truth boxes, in either of the two common layouts.

(a) folders: `root/val/<wnid>/*.JPEG` (or `root/<wnid>/*.JPEG`) with the official val bbox XMLs flat in
    `bbox_dir` (default: `root/bbox`, `root/val_bbox`, Kaggle's `root/ILSVRC/Annotations/CLS-LOC/val`, else
    XMLs beside the images). The label is the folder's wnid; every <object> box of the XML is used.
(b) flat (Kaggle): `root/ILSVRC/Data/CLS-LOC/val/*.JPEG` + `root/LOC_val_solution.csv` (ImageId,
    PredictionString "wnid x0 y0 x1 y1 ..."), or a folder of JPEGs holding that CSV. The label is the
    first box's wnid; all boxes of the row are used. Image sizes for the bounds check come from the JPEG
    headers (no decoding).
A `LOC_synset_mapping.txt` in root is used as the class map when no map is given.
"""
from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS

from rtool.data.annotations import box_problem
from rtool.data.base import BoxDataset, Entry, existing_dir, read_image_size
from rtool.data.imagenet_classes import ImageNetClasses, load_imagenet_classes
from rtool.data.transforms import Preprocess
from rtool.errors import UsageError

_WNID_DIR = re.compile(r"^n\d{8}$")
SOLUTION_CSV = "LOC_val_solution.csv"
KAGGLE_IMAGES = Path("ILSVRC/Data/CLS-LOC/val")
KAGGLE_XMLS = Path("ILSVRC/Annotations/CLS-LOC/val")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS


def _boxes_tensor(boxes: Iterable[Sequence[int]]) -> torch.Tensor:
    return torch.tensor([list(b) for b in boxes], dtype=torch.int64).reshape(-1, 4)


class ImageNetVal(BoxDataset):
    def __init__(self, root: str | Path, bbox_dir: str | Path | None = None, preprocess: Preprocess | None = None,
                 classes: ImageNetClasses | str | Path | None = None, limit_per_class: int | None = None,
                 class_subset: Sequence[str | int] | None = None) -> None:
        """`classes`: class map (default: root's LOC_synset_mapping.txt, else the packaged standard order).
        `class_subset`: wnids or class indices to keep. `limit_per_class`: the first N usable images
        (sorted by file name) of each class."""
        super().__init__(preprocess if preprocess is not None else Preprocess.corrected())
        self.root = existing_dir(root, "ImageNet root")
        if limit_per_class is not None and limit_per_class < 1:
            raise UsageError(f"limit_per_class={limit_per_class}: expected a positive integer or None")
        self.limit_per_class = limit_per_class
        self.classes = self._class_map(classes)
        self.class_names = list(self.classes.labels)
        self.wnids = list(self.classes.wnids)
        self._keep = self._subset(class_subset)
        if (self.root / SOLUTION_CSV).is_file():
            self.layout = "flat"
            self._index_flat()
        else:
            self.layout = "folders"
            self._index_folders(bbox_dir)

    # ---- class map and subset -------------------------------------------------------------------
    def _class_map(self, classes) -> ImageNetClasses:
        if isinstance(classes, ImageNetClasses):
            return classes
        if classes is None and (self.root / "LOC_synset_mapping.txt").is_file():
            return load_imagenet_classes(self.root / "LOC_synset_mapping.txt")
        return load_imagenet_classes(classes)

    def _subset(self, subset) -> set[int] | None:
        if subset is None:
            return None
        keep = set()
        for item in subset:
            if isinstance(item, int) or str(item).isdigit():
                if not 0 <= int(item) < len(self.classes):
                    raise UsageError(f"class {item}: out of range; expected an index in 0..{len(self.classes) - 1}")
                keep.add(int(item))
            else:
                keep.add(self.classes.index(str(item)))
        return keep

    def _wanted(self, label: int) -> bool:
        return self._keep is None or label in self._keep

    def _add(self, per_class: dict[int, int], path: Path, label: int, boxes, size, key: str) -> None:
        """Check the boxes against the image size; add the entry or record why it was skipped."""
        width, height = size if size is not None else (None, None)
        for box in boxes:
            problem = box_problem(tuple(box), width, height)
            if problem:
                self.skip(key, problem)
                return
        self.entries.append(Entry(path=path, label=label, boxes=_boxes_tensor(boxes), key=key))
        per_class[label] += 1

    def _full(self, per_class: dict[int, int], label: int) -> bool:
        return self.limit_per_class is not None and per_class[label] >= self.limit_per_class

    # ---- layout (a): class folders + XMLs ----------------------------------------------------------
    def _image_root(self) -> Path:
        for candidate in (self.root / "val", self.root):
            if candidate.is_dir() and any(p.is_dir() and _WNID_DIR.match(p.name) for p in candidate.iterdir()):
                return candidate
        raise UsageError(f"ImageNet root {self.root}: found neither val/<wnid>/ folders nor {SOLUTION_CSV}; "
                         "expected the ImageNet val layout")

    def _bbox_dir(self, bbox_dir) -> Path | None:
        if bbox_dir is not None:
            return existing_dir(bbox_dir, "bbox folder")
        for candidate in (self.root / "bbox", self.root / "val_bbox", self.root / KAGGLE_XMLS):
            if candidate.is_dir():
                return candidate
        return None  # XMLs beside the images

    def _index_folders(self, bbox_dir) -> None:
        image_root = self._image_root()
        self.bbox_dir = self._bbox_dir(bbox_dir)
        per_class: dict[int, int] = defaultdict(int)
        for class_dir in sorted(p for p in image_root.iterdir() if p.is_dir() and _WNID_DIR.match(p.name)):
            if class_dir.name not in self.classes:
                raise UsageError(f"ImageNet folder {class_dir}: wnid {class_dir.name} is not in the class map")
            label = self.classes.index(class_dir.name)
            if not self._wanted(label):
                continue
            for image in sorted(p for p in class_dir.iterdir() if _is_image(p)):
                if self._full(per_class, label):
                    break
                key = image.relative_to(self.root).as_posix()
                annotation = self.read_annotation(key, self._find_xml(image), "no bbox XML")
                if annotation is None:
                    continue
                size = (annotation.width, annotation.height) if annotation.width else None
                self._add(per_class, image, label, [o.box for o in annotation.objects], size, key)

    def _find_xml(self, image: Path) -> Path | None:
        name = image.stem + ".xml"
        candidates = [image.with_name(name)]
        if self.bbox_dir is not None:
            candidates = [self.bbox_dir / name, self.bbox_dir / image.parent.name / name] + candidates
        return next((c for c in candidates if c.is_file()), None)

    # ---- layout (b): flat JPEGs + LOC_val_solution.csv ---------------------------------------------
    def _read_solution(self) -> dict[str, list[tuple[str, list[int]]]]:
        path = self.root / SOLUTION_CSV
        rows: dict[str, list[tuple[str, list[int]]]] = {}
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
                raise UsageError(f"{path}: header {reader.fieldnames}; expected columns ImageId,PredictionString")
            for line_no, row in enumerate(reader, 2):
                tokens = (row["PredictionString"] or "").split()
                if len(tokens) % 5:
                    raise UsageError(f"{path} line {line_no}: PredictionString has {len(tokens)} fields; "
                                     "expected groups of 'wnid xmin ymin xmax ymax'")
                try:
                    rows[row["ImageId"]] = [(tokens[i], [int(float(t)) for t in tokens[i + 1:i + 5]])
                                            for i in range(0, len(tokens), 5)]
                except ValueError:
                    raise UsageError(f"{path} line {line_no}: non-numeric box coordinate in PredictionString") from None
        return rows

    def _index_flat(self) -> None:
        self.bbox_dir = None
        image_dir = self.root / KAGGLE_IMAGES if (self.root / KAGGLE_IMAGES).is_dir() else self.root
        solution = self._read_solution()
        per_class: dict[int, int] = defaultdict(int)
        for image in sorted(p for p in image_dir.iterdir() if _is_image(p)):
            key = image.relative_to(self.root).as_posix()
            boxes = solution.get(image.stem)
            if boxes is None:
                self.skip(key, f"no row in {SOLUTION_CSV}")
                continue
            if not boxes:
                self.skip(key, f"no boxes in {SOLUTION_CSV}")
                continue
            wnid = boxes[0][0]
            if wnid not in self.classes:
                self.skip(key, f"wnid {wnid} is not in the class map")
                continue
            label = self.classes.index(wnid)
            if not self._wanted(label) or self._full(per_class, label):
                continue
            self._add(per_class, image, label, [b for _, b in boxes], read_image_size(image), key)
