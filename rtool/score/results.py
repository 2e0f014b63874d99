"""What `rtool score` computes: per-image scores, per-class CRS and the ranking, as plain data.

Results are built once (`ScoreResult.build`) and not changed afterwards: the flags and probe shares are part
of the construction, so a result always agrees with itself.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch

# Per image, one entry each (column-wise, so 50 000 ImageNet images stay cheap).
IMAGE_COLUMNS = ("label", "rs", "top1", "top5", "pred", "area", "nan_map")


@dataclass(frozen=True)
class ImageScores:
    keys: list[str]
    label: torch.Tensor    # [N] int64 class explained
    rs: torch.Tensor       # [N] float64 robustness score
    top1: torch.Tensor     # [N] bool: label == argmax
    top5: torch.Tensor     # [N] bool: label in the top 5 (top-k for k = min(5, classes))
    pred: torch.Tensor     # [N] int64 predicted class
    area: torch.Tensor     # [N] float64 share of the image inside the boxes
    nan_map: torch.Tensor  # [N] bool: the saliency map was constant (NaN after normalisation) -> RS 0
    thumbnails: torch.Tensor | None = None  # [N, t, t] uint8 saliency, for the overlays

    def __len__(self) -> int:
        return len(self.keys)

    @staticmethod
    def concat(parts: list["ImageScores"]) -> "ImageScores":
        parts = [p for p in parts if len(p)]
        if not parts:
            return ImageScores.empty()
        thumbs = [p.thumbnails for p in parts]
        return ImageScores(
            keys=[k for p in parts for k in p.keys],
            **{c: torch.cat([getattr(p, c) for p in parts]) for c in IMAGE_COLUMNS},
            thumbnails=torch.cat(thumbs) if all(t is not None for t in thumbs) else None,
        )

    @staticmethod
    def empty() -> "ImageScores":
        return ImageScores([], torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64),
                           torch.zeros(0, dtype=torch.bool), torch.zeros(0, dtype=torch.bool),
                           torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float64),
                           torch.zeros(0, dtype=torch.bool))

    def to_record(self) -> dict:
        """Plain dict of tensors and strings (what a shard file holds)."""
        return {"keys": list(self.keys), **{c: getattr(self, c) for c in IMAGE_COLUMNS}, "thumbnails": self.thumbnails}

    @staticmethod
    def from_record(record: dict) -> "ImageScores":
        return ImageScores(keys=list(record["keys"]), **{c: record[c] for c in IMAGE_COLUMNS},
                           thumbnails=record.get("thumbnails"))


@dataclass(frozen=True)
class ClassScore:
    id: int
    name: str
    n: int              # images scored
    acc: float          # top-5 accuracy (the authors' `acc` column)
    top1: float
    crs: float          # class robustness score: mean RS
    crs_std: float
    area: float         # mean share of the image inside the boxes
    size_adjusted: float  # crs / area (spec §5 proposal; not in the paper)
    nan_maps: int
    flagged: bool = False
    probe_top1: float | None = None  # share still predicted (top-1) with the boxes filled with the mean
    probe_top5: float | None = None


Probes = Mapping[int, tuple[float, float]]  # class id -> (share still top-1, share still top-5), boxes hidden


@dataclass(frozen=True)
class ScoreResult:
    images: ImageScores
    classes: list[ClassScore]          # only classes with at least one image, in class-index order
    ranking: list[int]                 # class ids, lowest CRS first
    flagged: list[int]                 # class ids: CRS < threshold or in the bottom k, lowest first
    threshold: float
    bottom_k: int
    config: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    planted: list[int] | None = None   # embedded default only: the classes that carry a planted cue

    @classmethod
    def from_classes(cls, images: ImageScores, classes: list[ClassScore], *, threshold: float, bottom_k: int,
                     probes: Probes | None = None, planted=None, config: dict | None = None,
                     stats: dict | None = None, skipped=()) -> "ScoreResult":
        """Rank and flag `classes`, attach the probe shares, and freeze it all into one result."""
        ranking, flagged = rank_and_flag(classes, threshold, bottom_k)
        probes = probes or {}
        flagged_ids = set(flagged)
        final = [replace(c, flagged=c.id in flagged_ids,
                         probe_top1=probes[c.id][0] if c.id in probes else c.probe_top1,
                         probe_top5=probes[c.id][1] if c.id in probes else c.probe_top5) for c in classes]
        return cls(images=images, classes=final, ranking=ranking, flagged=flagged, threshold=threshold,
                   bottom_k=bottom_k, config=dict(config or {}), stats=dict(stats or {}), skipped=list(skipped),
                   planted=list(planted) if planted is not None else None)

    @classmethod
    def build(cls, images: ImageScores, class_names: list[str], **kwargs) -> "ScoreResult":
        """The result of per-image scores: CRS per class, then as `from_classes`."""
        return cls.from_classes(images, class_scores(images, class_names), **kwargs)

    def with_probes(self, probes: Probes) -> "ScoreResult":
        """A new result with these probe shares added (this one is left as it is)."""
        return ScoreResult.from_classes(self.images, self.classes, threshold=self.threshold, bottom_k=self.bottom_k,
                                        probes=probes, planted=self.planted, config=self.config, stats=self.stats,
                                        skipped=self.skipped)

    def by_id(self) -> dict[int, ClassScore]:
        return {c.id: c for c in self.classes}

    def planted_ranked_lowest(self) -> bool | None:
        """Whether the planted classes are exactly the len(planted) lowest CRS (None without planted classes)."""
        if not self.planted:
            return None
        return set(self.ranking[: len(self.planted)]) == set(self.planted)

    def accurate_non_robust(self, min_acc: float = 0.9, max_crs: float = 0.3) -> list[int]:
        by_id = self.by_id()
        return [c for c in self.ranking if by_id[c].acc >= min_acc and by_id[c].crs < max_crs]


def class_scores(images: ImageScores, class_names: list[str]) -> list[ClassScore]:
    """Aggregate per-image results into one ClassScore per class that has images."""
    rows = []
    for cls in torch.unique(images.label).tolist():
        sel = images.label == cls
        n = int(sel.sum())
        rs = images.rs[sel].double()
        area = float(images.area[sel].double().mean())
        crs = float(rs.mean())
        rows.append(ClassScore(
            id=cls, name=class_names[cls] if cls < len(class_names) else str(cls), n=n,
            acc=float(images.top5[sel].double().mean()), top1=float(images.top1[sel].double().mean()),
            crs=crs, crs_std=float(rs.std(unbiased=False)) if n > 1 else 0.0, area=area,
            size_adjusted=crs / area if area > 0 else math.nan, nan_maps=int(images.nan_map[sel].sum()),
        ))
    return rows


def rank_and_flag(classes: list[ClassScore], threshold: float, bottom_k: int) -> tuple[list[int], list[int]]:
    """Class ids by ascending CRS (ties by id), and the flagged ones: CRS < threshold or among the bottom k."""
    ranking = [c.id for c in sorted(classes, key=lambda c: (c.crs, c.id))]
    crs = {c.id: c.crs for c in classes}
    flagged = [cid for i, cid in enumerate(ranking) if crs[cid] < threshold or i < bottom_k]
    return ranking, flagged
