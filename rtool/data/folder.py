"""Users' own data: an ImageFolder tree with a VOC-style XML beside every image.

Layout `root/<class_name>/<stem>.<jpg|png|...>` + `root/<class_name>/<stem>.xml`; class order = sorted
folder names (torchvision's ImageFolder rule). Every box in the XML is used. Coordinates are read as
0-based half-open pixels (what `write_folder` and most tools write); pass `one_based=True` for XMLs that
follow Pascal VOC's 1-based inclusive convention.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from rtool.data.annotations import box_problem
from rtool.data.base import BoxDataset, Entry, existing_dir
from rtool.data.transforms import Preprocess
from rtool.errors import UsageError


class BoxFolder(BoxDataset):
    def __init__(self, root: str | Path, preprocess: Preprocess, one_based: bool = False) -> None:
        super().__init__(preprocess)
        self.root = existing_dir(root, "image folder")
        try:
            self.class_names, class_to_idx = find_classes(str(self.root))
        except FileNotFoundError:
            raise UsageError(f"image folder {self.root}: no class subfolders; expected root/<class_name>/<image> + <image>.xml") from None
        samples = make_dataset(str(self.root), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        if not samples:
            raise UsageError(f"image folder {self.root}: no images in its class subfolders; expected {', '.join(IMG_EXTENSIONS)} files")
        shift = 1 if one_based else 0
        for path_str, label in samples:
            path = Path(path_str)
            key = path.relative_to(self.root).as_posix()
            xml = path.with_suffix(".xml")
            annotation = self.read_annotation(key, xml, "no XML beside the image")
            if annotation is None:
                continue
            boxes = [(x0 - shift, y0 - shift, x1, y1) for x0, y0, x1, y1 in (o.box for o in annotation.objects)]
            problem = next((p for p in (box_problem(b, annotation.width, annotation.height) for b in boxes) if p), None)
            if problem:
                self.skip(key, problem)
                continue
            self.entries.append(Entry(path=path, label=label,
                                      boxes=torch.tensor(boxes, dtype=torch.int64).reshape(-1, 4), key=key))
