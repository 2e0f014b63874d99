"""`rtool score`: does the model look at the object or at its context? (Szyc et al., ECML PKDD 2021)

Saliency per image → RS (share of saliency inside the ground-truth boxes) → CRS per class → ranking, flags,
and a probe that hides the object to confirm a spurious cue. No printing, no file I/O here.

    import rtool.score
    result = rtool.score.run(model, model.layer4, dataset, rtool.score.ScoreSettings(probe="flagged"))
    print(result.ranking[:10], result.flagged)
"""
from rtool.score.pipeline import run
from rtool.score.probe import hide_boxes, probe_classes
from rtool.score.results import ClassScore, ImageScores, ScoreResult, class_scores, rank_and_flag
from rtool.score.rs import area_fractions, robustness_scores
from rtool.score.saliency import SALIENCY_METHODS, saliency_maps
from rtool.score.settings import ScoreSettings, default_bottom_k

__all__ = [
    "SALIENCY_METHODS", "ClassScore", "ImageScores", "ScoreResult", "ScoreSettings", "area_fractions",
    "class_scores", "default_bottom_k", "hide_boxes", "probe_classes", "rank_and_flag", "robustness_scores",
    "run", "saliency_maps",
]
