"""summary.json of `rtool score`: configuration, counts, the spec §7 statistics, the lowest classes and flags."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rtool.report.numbers import jsonable
from rtool.report.score.tables import lowest_classes
from rtool.score.results import ClassScore, ScoreResult

# Spec §5: "accurate but non-robust" = top-5 acc >= 0.9 and CRS < 0.3.
ACCURATE_MIN_ACC = 0.9
NON_ROBUST_MAX_CRS = 0.3
MIN_LOWEST_ROWS = 10


def crs_statistics(crs: Sequence[float], acc: Sequence[float]) -> dict:
    """The statistics of spec §7 over classes.

    p10/p90 are empirical quantiles (the sorted value at rank ceil(q*n), numpy's "inverted_cdf"): that is the
    definition that reproduces the published table from the authors' CSVs; the median is the usual midpoint.
    """
    c = np.asarray(crs, dtype=np.float64)
    a = np.asarray(acc, dtype=np.float64)
    if c.size == 0:
        return {"mean_crs": None, "median_crs": None, "p10_crs": None, "p90_crs": None,
                "n_crs_below_0.3": 0, "n_crs_below_0.5": 0, "mean_top5_acc": None}
    return {
        "mean_crs": float(c.mean()),
        "median_crs": float(np.median(c)),
        "p10_crs": float(np.percentile(c, 10, method="inverted_cdf")),
        "p90_crs": float(np.percentile(c, 90, method="inverted_cdf")),
        "n_crs_below_0.3": int((c < 0.3).sum()),
        "n_crs_below_0.5": int((c < 0.5).sum()),
        "mean_top5_acc": float(a.mean()) if a.size else None,
    }


def class_row(rank: int | None, c: ClassScore) -> dict:
    return {"rank": rank, "id": c.id, "name": c.name, "n": c.n, "crs": c.crs, "crs_std": c.crs_std, "acc": c.acc,
            "top1": c.top1, "area": c.area, "size_adjusted": c.size_adjusted, "nan_maps": c.nan_maps,
            "flagged": c.flagged, "probe_top1": c.probe_top1, "probe_top5": c.probe_top5}


def lowest_row_count(result: ScoreResult) -> int:
    """The lowest table shows every flagged class, and at least a few rows."""
    return min(len(result.ranking), max(len(result.flagged), MIN_LOWEST_ROWS))


def score_summary(result: ScoreResult, files: Sequence[str] = ()) -> dict:
    """Everything a reader needs without opening the CSVs; `files` = the output files, relative to the folder."""
    rank = {cid: i + 1 for i, cid in enumerate(result.ranking)}
    by_id = result.by_id()
    statistics = crs_statistics([c.crs for c in result.classes], [c.acc for c in result.classes])
    statistics["n_crs_below_threshold"] = sum(c.crs < result.threshold for c in result.classes)
    # Same rule as ScoreResult.accurate_non_robust, without its per-class dict rebuild (1000 classes).
    accurate_non_robust = [cid for cid in result.ranking
                           if by_id[cid].acc >= ACCURATE_MIN_ACC and by_id[cid].crs < NON_ROBUST_MAX_CRS]
    planted = None
    if result.planted is not None:
        planted = {"classes": list(result.planted), "ranked_lowest": result.planted_ranked_lowest(),
                   "ranks": {str(c): rank.get(c) for c in result.planted}}
    return jsonable({
        "config": result.config,
        "stats": result.stats,
        "threshold": result.threshold,
        "bottom_k": result.bottom_k,
        "counts": {"images": len(result.images), "classes": len(result.classes), "flagged": len(result.flagged),
                   "skipped": len(result.skipped)},
        "skipped": [{"key": key, "reason": reason} for key, reason in result.skipped],
        "statistics": statistics,
        "lowest": [class_row(r, c) for r, c in lowest_classes(result, lowest_row_count(result))],
        "flagged": list(result.flagged),
        "accurate_non_robust": {
            "rule": f"acc >= {ACCURATE_MIN_ACC} and crs < {NON_ROBUST_MAX_CRS}",
            "classes": [{"id": cid, "name": by_id[cid].name, "acc": by_id[cid].acc, "crs": by_id[cid].crs,
                         "rank": rank[cid]} for cid in accurate_non_robust],
        },
        "planted": planted,
        "files": list(files),
    })
