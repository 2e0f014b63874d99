"""SRVR (spec §8): the mean volume of the robust regions found, as a fraction of Vol(Ω)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from rtool.errors import UsageError
from rtool.semantic.space import domain

VOLUMES = ("prod", "normalised")  # prod(r), or the paper's △ = prod(r) / 2^n
NEAR_ZERO_VOLUME = 1e-3           # the spec's own table counts boxes with prod(r) below this


@dataclass(frozen=True)
class SRVRSummary:
    """SRVR over a set of boxes: `value` in [0, 1] when clipped (multiply by 100 for the paper's %)."""

    value: float
    boxes: int         # boxes averaged (NaN boxes excluded)
    nan_boxes: int
    near_zero: int     # prod(r) < NEAR_ZERO_VOLUME
    over_domain: int   # unclipped volume larger than Vol(Ω)


def srvr(boxes: Iterable[tuple[torch.Tensor, torch.Tensor]], *, n: int = 2, clip: bool = True,
         volume: str = "prod") -> SRVRSummary:
    """E[Vol(D)] / Vol(Ω) over boxes (a, b) of dimension n; `clip` intersects each box with Ω first."""
    if volume not in VOLUMES:
        raise UsageError(f"volume {volume!r} is unknown; expected one of {', '.join(VOLUMES)}")
    low, high = domain(n)
    omega = float((high - low).prod())
    pairs = [(torch.as_tensor(a, dtype=torch.float64).reshape(-1), torch.as_tensor(b, dtype=torch.float64).reshape(-1))
             for a, b in boxes]
    if not pairs:
        raise UsageError("no regions to aggregate: expected at least one box")
    for a, b in pairs:
        if a.numel() != n or b.numel() != n:
            raise UsageError(f"region ({a.tolist()}, {b.tolist()}): expected {n} values per corner")
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    finite = torch.isfinite(a).all(1) & torch.isfinite(b).all(1)
    raw = (b - a).clamp(min=0).prod(1)
    if clip:
        sides = (torch.minimum(b, high) - torch.maximum(a, low)).clamp(min=0)
    else:
        sides = (b - a).clamp(min=0)
    volumes = sides.prod(1) / (2 ** n if volume == "normalised" else 1)
    kept = volumes[finite]
    value = float(kept.mean() / omega) if kept.numel() else float("nan")
    return SRVRSummary(value, int(finite.sum()), int((~finite).sum()), int((raw[finite] < NEAR_ZERO_VOLUME).sum()),
                       int((raw[finite] > omega).sum()))


def srvr_by_method(regions: dict[str, list], *, n: int = 2, clip: bool = True,
                   volume: str = "prod") -> dict[str, SRVRSummary]:
    """SRVR per method of {method: [objects with .a and .b]}, plus "mean" = the mean of the methods' values."""
    table = {method: srvr([(r.a, r.b) for r in items], n=n, clip=clip, volume=volume)
             for method, items in regions.items()}
    if not table:
        raise UsageError("no methods to aggregate")
    values = [s.value for s in table.values()]
    table["mean"] = SRVRSummary(sum(values) / len(values), sum(s.boxes for s in table.values()),
                                sum(s.nan_boxes for s in table.values()), sum(s.near_zero for s in table.values()),
                                sum(s.over_domain for s in table.values()))
    return table


def regions_from_record(record: dict) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """{method: [(a, b) per start point]} of one `optim.pt` dict (as read with weights_only=True)."""
    from rtool.semantic.regions import METHODS

    found = {}
    for method in METHODS:
        if method in record:
            try:
                found[method] = [(torch.as_tensor(box["a"]), torch.as_tensor(box["b"]))
                                 for box in record[method]["regions"]]
            except (KeyError, TypeError):
                raise UsageError(f"optim record: {method} has no regions with a and b") from None
    if not found:
        raise UsageError(f"optim record: none of {', '.join(METHODS)} found")
    return found


def srvr_table(records: Iterable[dict], *, clip: bool = True, volume: str = "prod") -> dict[str, SRVRSummary]:
    """SRVR per method over many objects' `optim.pt` dicts, plus "mean" of the methods (spec §8/§9 table form)."""
    pooled: dict[str, list] = {}
    dims = None
    for record in records:
        for method, boxes in regions_from_record(record).items():
            pooled.setdefault(method, []).extend(boxes)
            dims = dims or int(boxes[0][0].numel())
    if not pooled:
        raise UsageError("no optim records to aggregate")
    table = {method: srvr(boxes, n=dims, clip=clip, volume=volume) for method, boxes in pooled.items()}
    values = [s.value for s in table.values()]
    table["mean"] = SRVRSummary(sum(values) / len(values), sum(s.boxes for s in table.values()),
                                sum(s.nan_boxes for s in table.values()), sum(s.near_zero for s in table.values()),
                                sum(s.over_domain for s in table.values()))
    return table
