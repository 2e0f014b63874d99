"""Pascal VOC 2007/2012 as (image, class present) pairs for the robustness score (spec section 6).

One sample per image and class present in it, whose boxes are that class's boxes only (difficult ones
dropped by default). VOC coordinates are 1-based and inclusive; they are converted to 0-based half-open
boxes (xmin-1, ymin-1, xmax, ymax) so a box covers exactly the pixels the annotator marked.
"""
from __future__ import annotations

from pathlib import Path

import torch

from rtool.data.annotations import box_problem
from rtool.data.base import BoxDataset, Entry, existing_dir
from rtool.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from rtool.errors import UsageError

VOC_CLASSES = [
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]
VOC_YEARS = ("2007", "2008", "2009", "2010", "2011", "2012")


def find_voc_year_dir(root: Path, year: str) -> Path:
    """Accept VOCdevkit/VOC<year>, the VOCdevkit folder, or the folder holding VOCdevkit."""
    for candidate in (root, root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"):
        if (candidate / "Annotations").is_dir() and (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise UsageError(f"VOC root {root}: no VOC{year} folder with Annotations/ and ImageSets/Main/ found; "
                     "expected VOCdevkit or VOCdevkit/VOC" + year)


class VOCPairs(BoxDataset):
    multi_label = True  # VOC models score each class with its own sigmoid

    def __init__(self, root: str | Path, year: str = "2007", image_set: str = "val",
                 preprocess: Preprocess | None = None, skip_difficult: bool = True) -> None:
        super().__init__(preprocess if preprocess is not None
                         else Preprocess.corrected(256, 224, IMAGENET_MEAN, IMAGENET_STD))
        year = str(year)
        if year not in VOC_YEARS:
            raise UsageError(f"VOC year {year!r}: expected one of {', '.join(VOC_YEARS)}")
        self.year = year
        self.image_set = image_set
        self.skip_difficult = skip_difficult
        self.class_names = list(VOC_CLASSES)
        self.root = find_voc_year_dir(existing_dir(root, "VOC root"), year)
        self._index()

    def _image_ids(self) -> list[str]:
        listing = self.root / "ImageSets" / "Main" / f"{self.image_set}.txt"
        if not listing.is_file():
            available = sorted(p.stem for p in listing.parent.glob("*.txt") if "_" not in p.stem)
            raise UsageError(f"VOC image set {self.image_set!r}: {listing} not found; expected one of {available}")
        return [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]

    def _index(self) -> None:
        prefix = f"VOC{self.year}"
        for image_id in self._image_ids():
            image = self.root / "JPEGImages" / f"{image_id}.jpg"
            xml = self.root / "Annotations" / f"{image_id}.xml"
            key = f"{prefix}/{image_id}"
            if not image.is_file():
                self.skip(key, "image file missing")
                continue
            annotation = self.read_annotation(key, xml, "no annotation XML")
            if annotation is None:
                continue
            by_class: dict[int, list[tuple[int, int, int, int]]] = {}
            difficult_only: set[int] = set()
            for obj in annotation.objects:
                if obj.name not in VOC_CLASSES:
                    self.skip(key, f"unknown class {obj.name!r}")
                    continue
                label = VOC_CLASSES.index(obj.name)
                if obj.difficult and self.skip_difficult:
                    difficult_only.add(label)
                    continue
                xmin, ymin, xmax, ymax = obj.box
                by_class.setdefault(label, []).append((xmin - 1, ymin - 1, xmax, ymax))
            for label in sorted(difficult_only - set(by_class)):
                self.skip(f"{key}/{VOC_CLASSES[label]}", "only difficult boxes")
            for label in sorted(by_class):
                pair_key = f"{key}/{VOC_CLASSES[label]}"
                problems = [p for p in (box_problem(b, annotation.width, annotation.height) for b in by_class[label]) if p]
                if problems:
                    self.skip(pair_key, problems[0])
                    continue
                boxes = torch.tensor(by_class[label], dtype=torch.int64).reshape(-1, 4)
                self.entries.append(Entry(path=image, label=label, boxes=boxes, key=pair_key))
