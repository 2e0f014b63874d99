"""Surprise adequacy of target traces against a reference (training) set: DSA0-DSA3, LSA and MDSA (spec §A).

Build a `ReferenceSet` once from the training traces and their labels; it sorts them into class blocks
and caches what depends only on the references (SADL's dist_b per reference point, class means, KDEs,
covariances), so any number of query blocks can be scored against it. Targets come with one class label
each (the model's prediction or the ground truth, see `surprise_scores`).

The variants, for a target x with label c and reference class blocks T_j:
- dsa0 (SADL): x_a = nearest point of T_c, dist_a = |x - x_a|; dist_b = distance from x_a to the nearest
  point outside T_c; DSA = dist_a / dist_b.
- dsa1: dist_a as dsa0; dist_b = distance from x itself to its nearest point outside T_c.
- dsa2: d_j = |x - mean(T_j)|; DSA = d_c / min_{j != c} d_j.
- dsa3: m_j = mean of the k points of T_j nearest to x (all of T_j when it has fewer than k);
  d_j = |x - m_j|; DSA = d_c / min_{j != c} d_j.
- lsa: -log of a Gaussian KDE (scipy, Scott's rule) fitted on T_c, after dropping the features whose
  variance within any class is below a threshold.
- mdsa: Mahalanobis distance of x to the mean and empirical covariance of T_c.
Euclidean distances, computed exactly in float64; ties go to the lowest reference index. Ratios follow
IEEE division (0/0 is NaN, x/0 is inf); a target whose own class has no reference point scores NaN.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.stats
import torch

from rtool.corner.traces import Traces
from rtool.engine import progress
from rtool.errors import UsageError
from rtool.ops import dsa_knn

DSA_VARIANTS = ("dsa0", "dsa1", "dsa2", "dsa3")
VARIANTS = DSA_VARIANTS + ("lsa", "mdsa")
LABEL_SOURCES = ("true", "pred")
DEFAULT_K = 20
LSA_VARIANCE_THRESHOLD = 1e-5

# Settings of the two reference codes (spec §A.2, §A.5), for `surprise_scores(**PRESETS[name])`.
PRESETS = {
    # The corner-case robustness repo: DSA3 (k=20) of every training image, references grouped by
    # ground truth, targets labelled by the model's prediction, the target's own trace not excluded.
    "corner": {"variant": "dsa3", "k": 20, "reference_labels": "true", "target_labels": "pred",
               "exclude_self": False},
    # SADL: DSA of new inputs, references and targets both grouped by the model's prediction.
    "sadl": {"variant": "dsa0", "reference_labels": "pred", "target_labels": "pred", "exclude_self": False},
}

_GATHER_BUDGET = 1 << 23  # float64 elements of gathered neighbours per query block


@dataclass(frozen=True)
class DSAResult:
    """Distance-based surprise of Q targets.

    scores [Q] float64 = dist_a / dist_b. For dsa0/dsa1: dist_a is the distance to `nearest_same` and
    dist_b the distance (from x_a for dsa0, from x for dsa1) to `nearest_other`, both reference indices
    in the caller's original order (-1 where none). For dsa2/dsa3: class_distances [Q, C] holds every
    d_j, dist_a = d_c, dist_b = min_{j != c} d_j and `closest_other_class` that j.
    """

    variant: str
    scores: torch.Tensor
    dist_a: torch.Tensor
    dist_b: torch.Tensor
    labels: torch.Tensor
    k: int | None = None
    nearest_same: torch.Tensor | None = None
    nearest_other: torch.Tensor | None = None
    class_distances: torch.Tensor | None = None
    closest_other_class: torch.Tensor | None = None


@dataclass(frozen=True)
class LSAResult:
    """Likelihood-based surprise: scores [Q] float64 = -log KDE_c(x) (NaN where class c has no KDE).

    kept_features: the trace features the KDEs use; unfit_classes: classes whose KDE could not be fitted
    (no or too few points, or a singular covariance after the feature drop).
    """

    scores: torch.Tensor
    labels: torch.Tensor
    kept_features: torch.Tensor
    unfit_classes: tuple[int, ...]
    variant: str = "lsa"


@dataclass(frozen=True)
class MDSAResult:
    """Mahalanobis surprise: scores [Q] float64 = sqrt((x - mu_c)^T pinv(Sigma_c) (x - mu_c)).

    Sigma_c is the empirical (1/n) covariance of class c; its pseudo-inverse makes a singular one usable.
    unfit_classes: classes without reference points (their targets score NaN).
    """

    scores: torch.Tensor
    labels: torch.Tensor
    unfit_classes: tuple[int, ...]
    variant: str = "mdsa"


def _as_labels(labels, count: int, what: str) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != count:
        raise UsageError(f"{what} must be 1-D with {count} entries, got shape {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise UsageError(f"{what} must hold integer class ids, got dtype {labels.dtype}")
    return labels.to("cpu", torch.long)


@dataclass(eq=False)
class ReferenceSet:
    """Reference traces sorted into contiguous class blocks, with the per-reference caches of surprise.

    Build with `ReferenceSet.build(values, labels)`. `values` [N, D] keep their dtype (float32 or float64;
    distances are exact float64 either way); `order[p]` is the caller's index of sorted row p and
    `position[i]` the sorted row of caller index i; class c owns sorted rows offsets[c]:offsets[c+1].
    """

    values: torch.Tensor
    labels: torch.Tensor
    order: torch.Tensor
    position: torch.Tensor
    offsets: torch.Tensor
    num_classes: int
    _dist_b: torch.Tensor = field(repr=False, default=None)
    _index_b: torch.Tensor = field(repr=False, default=None)
    _means: torch.Tensor | None = field(repr=False, default=None)
    _padded64: torch.Tensor | None = field(repr=False, default=None)
    _kdes: dict = field(repr=False, default_factory=dict)
    _gaussians: tuple | None = field(repr=False, default=None)

    @classmethod
    def build(cls, values: torch.Tensor, labels, num_classes: int | None = None) -> ReferenceSet:
        """Sort `values` [N, D] by `labels` [N] (stable: ties keep the caller's order) into class blocks.

        num_classes defaults to max(label) + 1; classes without points get empty blocks.
        """
        values = torch.as_tensor(values)
        if values.dim() != 2:
            raise UsageError(f"reference traces must be 2-D [N, D], got shape {tuple(values.shape)}")
        if values.shape[0] == 0:
            raise UsageError("the reference set is empty; expected at least one reference trace")
        if values.dtype not in (torch.float32, torch.float64):
            values = values.float()
        labels = _as_labels(labels, values.shape[0], "reference labels")
        if int(labels.min()) < 0:
            raise UsageError(f"reference labels must be >= 0, got {int(labels.min())}")
        top = int(labels.max()) + 1
        if num_classes is None:
            num_classes = top
        elif num_classes < top:
            raise UsageError(f"reference label {top - 1} is out of range for num_classes={num_classes}")
        # numpy for the one-off reordering: single-threaded, no thread wake-ups on a busy machine.
        # The narrowest integer type that holds the labels: numpy's stable sort is a radix sort there.
        order_np = np.argsort(labels.numpy().astype(np.min_scalar_type(top - 1)), kind="stable")
        position_np = np.empty_like(order_np)
        position_np[order_np] = np.arange(order_np.size)
        counts = np.bincount(labels.numpy(), minlength=num_classes)
        offsets = torch.zeros(num_classes + 1, dtype=torch.long)
        offsets[1:] = torch.from_numpy(np.cumsum(counts))
        sorted_values = torch.from_numpy(np.ascontiguousarray(values.detach().cpu().numpy()[order_np]))
        order = torch.from_numpy(order_np.astype(np.int64))
        n = values.shape[0]
        return cls(sorted_values, labels[order], order, torch.from_numpy(position_np.astype(np.int64)), offsets,
                   int(num_classes), torch.from_numpy(np.full(n, np.nan)), torch.from_numpy(np.full(n, -1, np.int64)))

    @classmethod
    def from_traces(cls, traces: Traces, labels: str = "true", num_classes: int | None = None) -> ReferenceSet:
        """A reference set from `traces`, grouped by their ground truth ("true") or predictions ("pred")."""
        return cls.build(traces.values, _label_source(traces, labels, "reference_labels"), num_classes)

    def __len__(self) -> int:
        return self.values.shape[0]

    @property
    def class_sizes(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def block(self, c: int) -> torch.Tensor:
        """The reference traces of class c (sorted rows), float64."""
        return self.values[int(self.offsets[c]):int(self.offsets[c + 1])].double()

    def knn(self, queries: torch.Tensor, k: int, self_rows: torch.Tensor | None = None):
        """dsa_knn on the sorted rows: ([Q, C, k] distances, [Q, C, k] sorted rows, -1 past a class end)."""
        return dsa_knn(queries, self.values, self.offsets, k, self_rows)

    def nearest_in_class(self, queries: torch.Tensor, labels: torch.Tensor, self_rows: torch.Tensor | None = None):
        """Nearest reference of each query within its own class block only: ([Q] distances, [Q] sorted rows).

        One dsa_knn call per class present, on that class's rows alone (a tenth of the work of searching
        every class when only the own class is needed). Rows are -1 (distance inf) for an empty class.
        """
        distances = torch.full((queries.shape[0],), float("inf"), dtype=torch.float64)
        rows = torch.full((queries.shape[0],), -1, dtype=torch.long)
        for c in torch.unique(labels).tolist():
            lo, hi = int(self.offsets[c]), int(self.offsets[c + 1])
            chosen = torch.nonzero(labels == c)[:, 0]
            if hi == lo:
                continue
            skip = None
            if self_rows is not None:
                own = self_rows[chosen]
                skip = torch.where((own >= lo) & (own < hi), own - lo, -1)
            d, r = dsa_knn(queries[chosen], self.values[lo:hi], torch.tensor([0, hi - lo]), 1, skip)
            distances[chosen] = d[:, 0, 0]
            rows[chosen] = torch.where(r[:, 0, 0] >= 0, r[:, 0, 0] + lo, -1)
        return distances, rows

    def to_original(self, rows: torch.Tensor) -> torch.Tensor:
        """Sorted rows -> the caller's indices, -1 kept."""
        return torch.where(rows >= 0, self.order[rows.clamp(min=0)], -1)

    def padded_float64(self) -> torch.Tensor:
        """[N + 1, D] float64 copy of the sorted values with a zero row last (row N reads zeros), cached."""
        if self._padded64 is None:
            padded = torch.zeros(self.values.shape[0] + 1, self.values.shape[1], dtype=torch.float64)
            padded[:-1] = self.values
            self._padded64 = padded
        return self._padded64

    def class_means(self) -> torch.Tensor:
        """[C, D] float64 mean trace of each class (NaN rows for empty classes), cached."""
        if self._means is None:
            means = torch.full((self.num_classes, self.values.shape[1]), float("nan"), dtype=torch.float64)
            for c in range(self.num_classes):
                if self.class_sizes[c] > 0:
                    means[c] = self.block(c).mean(0)
            self._means = means
        return self._means

    def nearest_other(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """SADL's dist_b for sorted rows: distance from each row to the nearest reference outside its class.

        Returns (distances [P] float64, the caller's index of that nearest point [P], -1 when there is
        none). Depends only on the reference row, so it is computed once per row and cached.
        """
        rows = rows.to(torch.long)
        todo = torch.unique(rows[torch.isnan(self._dist_b[rows])])
        if todo.numel() > 0:
            distance, index = self._other_class_nearest(self.values[todo], self.labels[todo], None)
            self._dist_b[todo] = distance
            self._index_b[todo] = index
        return self._dist_b[rows], self._index_b[rows]

    def _other_class_nearest(self, queries, own_class, self_rows):
        """Nearest reference outside class `own_class[q]` for each query: (distance, caller index)."""
        distances, rows = self.knn(queries, 1, self_rows)
        return _min_over_other_classes(distances[..., 0], self.to_original(rows[..., 0]), own_class)

    def kde(self, threshold: float):
        """(kept feature mask [D], {class: scipy gaussian_kde or None}) for LSA, cached per threshold."""
        if threshold not in self._kdes:
            values = self.values.double().numpy()
            keep = np.ones(values.shape[1], dtype=bool)
            for c in range(self.num_classes):
                block = values[int(self.offsets[c]):int(self.offsets[c + 1])]
                if block.shape[0] > 0:
                    keep &= block.var(axis=0) >= threshold
            kdes = {}
            for c in range(self.num_classes):
                block = values[int(self.offsets[c]):int(self.offsets[c + 1])][:, keep]
                kdes[c] = None
                if block.shape[0] >= 2 and keep.any():
                    try:
                        kdes[c] = scipy.stats.gaussian_kde(block.T)
                    except (np.linalg.LinAlgError, ValueError):
                        kdes[c] = None
            self._kdes[threshold] = (torch.from_numpy(keep), kdes)
        return self._kdes[threshold]

    def gaussians(self):
        """Per class (mean [D], pseudo-inverse of the 1/n covariance [D, D]) float64 numpy, or None; cached."""
        if self._gaussians is None:
            stats = []
            for c in range(self.num_classes):
                block = self.block(c).numpy()
                if block.shape[0] == 0:
                    stats.append(None)
                    continue
                mean = block.mean(axis=0)
                centred = block - mean
                covariance = centred.T @ centred / block.shape[0]
                stats.append((mean, scipy.linalg.pinvh(covariance)))
            self._gaussians = tuple(stats)
        return self._gaussians


def _min_over_other_classes(distances, indices, own_class):
    """Per row, the smallest distance over classes != own_class and its index (lowest index on ties)."""
    classes = torch.arange(distances.shape[1])
    masked = torch.where(classes[None, :] == own_class[:, None], torch.inf, distances)
    best = masked.amin(dim=1) if masked.shape[1] > 0 else torch.full((masked.shape[0],), torch.inf,
                                                                     dtype=torch.float64)
    big = torch.iinfo(torch.long).max
    at_best = (masked == best[:, None]) & torch.isfinite(masked) & (indices >= 0)
    chosen = torch.where(at_best, indices, big).amin(dim=1) if masked.shape[1] > 0 else torch.full_like(best, big,
                                                                                                      dtype=torch.long)
    return best, torch.where(chosen == big, -1, chosen)


def _label_source(traces: Traces, source: str, what: str) -> torch.Tensor:
    if source not in LABEL_SOURCES:
        raise UsageError(f"{what} must be one of {', '.join(LABEL_SOURCES)}, got {source!r}")
    if source == "pred":
        return traces.predictions
    if traces.labels is None:
        raise UsageError(f"{what}='true' needs ground-truth labels, but these traces carry none")
    return traces.labels


def _check_k(k: int, reference: ReferenceSet) -> int:
    if isinstance(k, bool) or int(k) != k or k < 1 or k > len(reference):
        raise UsageError(f"k must be an integer in [1, {len(reference)}] (the reference set size), got {k}")
    return int(k)


def _prepare(reference: ReferenceSet, queries, labels, self_index):
    queries = torch.as_tensor(queries)
    if queries.dim() != 2 or queries.shape[1] != reference.values.shape[1]:
        raise UsageError(f"queries must be [Q, {reference.values.shape[1]}] traces, got shape {tuple(queries.shape)}")
    queries = queries.detach().to("cpu", reference.values.dtype).contiguous()
    labels = _as_labels(labels, queries.shape[0], "target labels")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= reference.num_classes):
        bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
        raise UsageError(f"target label {bad} is out of range for a reference set of {reference.num_classes} classes")
    rows = None
    if self_index is not None:
        self_index = _as_labels(self_index, queries.shape[0], "self_index")
        if self_index.numel() and (int(self_index.min()) < -1 or int(self_index.max()) >= len(reference)):
            raise UsageError(f"self_index must hold -1 or reference indices in [0, {len(reference)}), "
                             f"got {int(self_index.min())}..{int(self_index.max())}")
        rows = torch.where(self_index >= 0, reference.position[self_index.clamp(min=0)], -1)
    return queries, labels, rows


def _blocks(count: int, size: int, quiet: bool = True, desc: str = ""):
    size = max(1, size)
    starts = range(0, count, size)
    for start in progress(starts, total=len(starts), desc=desc, quiet=quiet, unit="block"):
        yield slice(start, min(count, start + size))


def _ratio_result(variant, k, class_distances, labels):
    own = class_distances.gather(1, labels[:, None])[:, 0]
    other_d, other_c = _min_over_other_classes(class_distances, torch.arange(class_distances.shape[1]).expand_as(
        class_distances), labels)
    return DSAResult(variant, own / other_d, own, other_d, labels, k, class_distances=class_distances,
                     closest_other_class=other_c)


def dsa(
    reference: ReferenceSet,
    queries: torch.Tensor,
    labels: torch.Tensor,
    variant: str = "dsa3",
    k: int = DEFAULT_K,
    self_index: torch.Tensor | None = None,
    block: int = 4096,
    quiet: bool = True,
) -> DSAResult:
    """Distance-based surprise of `queries` [Q, D] with class `labels` [Q] against `reference`.

    variant: dsa0 | dsa1 | dsa2 | dsa3 (module docstring); k: the neighbours of dsa3 (1..len(reference),
    else UsageError; a class with fewer than k points uses all of them). self_index [Q] (optional): the
    reference index (caller's order) of each target's own trace, -1 for none; that trace is then left
    out of every neighbour search, of dsa0's dist_b and of dsa2's class mean, as if the target were not in
    the reference set. Queries are cast to the reference dtype and scored `block` at a time (a progress
    bar over the blocks unless `quiet`).
    """
    if variant not in DSA_VARIANTS:
        raise UsageError(f"DSA variant must be one of {', '.join(DSA_VARIANTS)}, got {variant!r}")
    queries, labels, rows = _prepare(reference, queries, labels, self_index)
    if variant == "dsa3":
        k = _check_k(k, reference)
        return _dsa3(reference, queries, labels, k, rows, block, quiet)
    if variant == "dsa2":
        return _dsa2(reference, queries, labels, rows)
    return _dsa01(reference, queries, labels, rows, variant, block, quiet)


def _dsa01(reference, queries, labels, rows, variant, block, quiet):
    count = queries.shape[0]
    dist_a = torch.empty(count, dtype=torch.float64)
    dist_b = torch.empty(count, dtype=torch.float64)
    near_a = torch.empty(count, dtype=torch.long)
    near_b = torch.empty(count, dtype=torch.long)
    for part in _blocks(count, block, quiet, variant):
        skip = None if rows is None else rows[part]
        own = labels[part]
        if variant == "dsa1":
            distances, found = reference.knn(queries[part], 1, skip)
            distances, found = distances[..., 0], found[..., 0]
            dist_a[part] = distances.gather(1, own[:, None])[:, 0]
            near_a[part] = reference.to_original(found.gather(1, own[:, None])[:, 0])
            dist_b[part], near_b[part] = _min_over_other_classes(distances, reference.to_original(found), own)
            continue
        dist_a[part], row_a = reference.nearest_in_class(queries[part], own, skip)
        near_a[part] = reference.to_original(row_a)
        # dsa0: distance from x_a to the nearest point outside the target's class, cached per x_a.
        has_a = row_a >= 0
        d_b = torch.full((row_a.shape[0],), float("nan"), dtype=torch.float64)
        i_b = torch.full((row_a.shape[0],), -1, dtype=torch.long)
        if has_a.any():
            d_b[has_a], i_b[has_a] = reference.nearest_other(row_a[has_a])
        if skip is not None:
            # A target left out of the references cannot be x_b: redo those few searches without it.
            skipped_b = has_a & (skip >= 0) & (i_b >= 0) & (i_b == reference.to_original(skip))
            if skipped_b.any():
                d_b[skipped_b], i_b[skipped_b] = reference._other_class_nearest(
                    reference.values[row_a[skipped_b]], own[skipped_b], skip[skipped_b])
        dist_b[part], near_b[part] = d_b, i_b
    scores = dist_a / dist_b
    scores = torch.where(near_a < 0, float("nan"), scores)
    return DSAResult(variant, scores, dist_a, dist_b, labels, None, near_a, near_b)


def _dsa2(reference, queries, labels, rows):
    means = reference.class_means()
    q = queries.double()
    class_distances = ((q[:, None, :] - means[None, :, :]) ** 2).sum(-1).sqrt()
    if rows is not None and (rows >= 0).any():
        which = torch.nonzero(rows >= 0)[:, 0]
        own_rows = rows[which]
        own_class = reference.labels[own_rows]
        sizes = reference.class_sizes[own_class].double()
        sums = means[own_class] * sizes[:, None]
        left_out = (sums - reference.values[own_rows].double()) / (sizes - 1)[:, None]
        d = ((q[which] - left_out) ** 2).sum(-1).sqrt()
        class_distances[which, own_class] = torch.where(sizes > 1, d, torch.nan)
    class_distances = torch.nan_to_num(class_distances, nan=torch.inf)
    result = _ratio_result("dsa2", None, class_distances, labels)
    own_empty = reference.class_sizes[labels] == 0
    return _with_nan_where(result, own_empty)


def _dsa3(reference, queries, labels, k, rows, block, quiet):
    count, dim = queries.shape
    num_classes = reference.num_classes
    class_distances = torch.empty(count, num_classes, dtype=torch.float64)
    padded = reference.padded_float64()
    size = min(block, max(1, _GATHER_BUDGET // max(1, num_classes * k * dim)))
    for part in _blocks(count, size, quiet, "dsa3"):
        skip = None if rows is None else rows[part]
        _, found = reference.knn(queries[part], k, skip)  # [B, C, k] sorted rows, -1 past a class end
        taken = (found >= 0).sum(-1)
        # Row -1 (none) reads the zero row at the end of `padded`, so the sum covers the found neighbours only.
        neighbours = torch.where(found >= 0, found, padded.shape[0] - 1).view(-1)
        sums = padded.index_select(0, neighbours).view(*found.shape, dim).sum(2)
        local_mean = sums / taken[..., None]  # [B, C, D]; 0/0 for an empty class
        d = (queries[part].double()[:, None, :] - local_mean).square().sum(-1).sqrt()
        class_distances[part] = torch.where(taken > 0, d, torch.inf)
    result = _ratio_result("dsa3", k, class_distances, labels)
    own_empty = class_distances.gather(1, labels[:, None])[:, 0] == torch.inf
    return _with_nan_where(result, own_empty)


def _with_nan_where(result: DSAResult, mask: torch.Tensor) -> DSAResult:
    if not mask.any():
        return result
    return DSAResult(result.variant, torch.where(mask, torch.nan, result.scores), result.dist_a, result.dist_b,
                     result.labels, result.k, result.nearest_same, result.nearest_other, result.class_distances,
                     result.closest_other_class)


def lsa(reference: ReferenceSet, queries: torch.Tensor, labels: torch.Tensor,
        threshold: float = LSA_VARIANCE_THRESHOLD) -> LSAResult:
    """-log KDE of each target under the KDE of its class (SADL's LSA, spec §A.3).

    Features whose variance within any class is below `threshold` are dropped for every class; each
    class's KDE is scipy's gaussian_kde (Scott's rule) on the remaining features, cached on `reference`.
    Targets of a class whose KDE cannot be fitted score NaN (listed in `unfit_classes`).
    """
    queries, labels, _ = _prepare(reference, queries, labels, None)
    keep, kdes = reference.kde(float(threshold))
    points = queries.double().numpy()[:, keep.numpy()]
    scores = np.full(points.shape[0], np.nan)
    for c, kde in kdes.items():
        chosen = (labels == c).numpy()
        if kde is not None and chosen.any():
            scores[chosen] = -kde.logpdf(points[chosen].T)
    unfit = tuple(c for c, kde in kdes.items() if kde is None)
    return LSAResult(torch.from_numpy(scores), labels, torch.nonzero(keep)[:, 0], unfit)


def mdsa(reference: ReferenceSet, queries: torch.Tensor, labels: torch.Tensor) -> MDSAResult:
    """Mahalanobis distance of each target to its class's mean and empirical covariance (spec §A.3)."""
    queries, labels, _ = _prepare(reference, queries, labels, None)
    points = queries.double().numpy()
    scores = np.full(points.shape[0], np.nan)
    stats = reference.gaussians()
    for c, stat in enumerate(stats):
        chosen = (labels == c).numpy()
        if stat is None or not chosen.any():
            continue
        mean, precision = stat
        centred = points[chosen] - mean
        squared = np.einsum("ij,jk,ik->i", centred, precision, centred)
        scores[chosen] = np.sqrt(np.maximum(squared, 0.0))
    unfit = tuple(c for c, stat in enumerate(stats) if stat is None)
    return MDSAResult(torch.from_numpy(scores), labels, unfit)


def surprise_coverage(scores, upper: float = 2000.0, buckets: int = 1000, lower: float | None = None) -> float:
    """SADL's surprise coverage (spec §A.3): the fraction of `buckets` hit by `scores`.

    The bucket edges are `buckets` evenly spaced values from `lower` (default: the smallest score) to
    `upper` (SADL: 2000 for LSA and DSA); a score's bucket is its np.digitize index, so, as in SADL, a score
    above `upper` counts in one overflow bucket. NaN scores are ignored. SADL reports this times 100.
    """
    values = torch.as_tensor(scores).detach().cpu().double().numpy().ravel()
    values = values[~np.isnan(values)]
    if isinstance(buckets, bool) or int(buckets) != buckets or buckets < 1:
        raise UsageError(f"buckets must be a positive integer, got {buckets}")
    if values.size == 0:
        return 0.0
    low = float(values.min()) if lower is None else float(lower)
    if not upper > low:
        raise UsageError(f"upper must be above the lower edge {low}, got {upper}")
    hit = np.unique(np.digitize(values, np.linspace(low, upper, int(buckets))))
    return hit.size / int(buckets)


def surprise_scores(
    reference_traces: Traces,
    target_traces: Traces,
    variant: str = "dsa3",
    *,
    k: int = DEFAULT_K,
    reference_labels: str = "true",
    target_labels: str = "pred",
    exclude_self: bool = False,
    num_classes: int | None = None,
    reference: ReferenceSet | None = None,
    lsa_threshold: float = LSA_VARIANCE_THRESHOLD,
    quiet: bool = True,
) -> DSAResult | LSAResult | MDSAResult:
    """Surprise of `target_traces` against `reference_traces` with the label sources chosen by name.

    reference_labels / target_labels: "true" (ground truth) or "pred" (the model's prediction) for the
    reference class blocks and for each target's class. exclude_self: the targets are the reference
    traces themselves, row for row, and each target's own trace is left out (DSA variants only).
    Pass a `reference` built earlier (from the same traces and reference_labels) to reuse its caches.
    `PRESETS` holds the two reference codes' settings.
    """
    if variant not in VARIANTS:
        raise UsageError(f"surprise variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if reference is None:
        reference = ReferenceSet.from_traces(reference_traces, reference_labels, num_classes)
    labels = _label_source(target_traces, target_labels, "target_labels")
    self_index = None
    if exclude_self:
        if variant not in DSA_VARIANTS:
            raise UsageError(f"exclude_self is supported for {', '.join(DSA_VARIANTS)}, not {variant!r}")
        if len(target_traces) != len(reference):
            raise UsageError(f"exclude_self needs the targets to be the reference traces row for row, but there are "
                             f"{len(target_traces)} targets and {len(reference)} references")
        self_index = torch.arange(len(reference))
    if variant == "lsa":
        return lsa(reference, target_traces.values, labels, lsa_threshold)
    if variant == "mdsa":
        return mdsa(reference, target_traces.values, labels)
    return dsa(reference, target_traces.values, labels, variant, k, self_index, quiet=quiet)


__all__ = [
    "DEFAULT_K", "DSA_VARIANTS", "DSAResult", "LABEL_SOURCES", "LSAResult", "LSA_VARIANCE_THRESHOLD", "MDSAResult",
    "PRESETS", "ReferenceSet", "VARIANTS", "dsa", "lsa", "mdsa", "surprise_coverage", "surprise_scores",
]
