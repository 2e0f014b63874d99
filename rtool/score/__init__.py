"""`rtool score`: does the model look at the object or at its context? (Szyc et al., ECML PKDD 2021)

Saliency per image → RS (share of saliency inside the ground-truth boxes) → CRS per class → ranking, flags,
and a probe that hides the object to confirm a spurious cue. No printing, no file I/O here.
"""
from rtool.score.pipeline import ScoreSettings, score_dataset
from rtool.score.probe import hide_boxes, probe_classes
from rtool.score.results import ClassScore, ImageScores, ScoreResult
from rtool.score.rs import area_fractions, robustness_scores
from rtool.score.saliency import SALIENCY_METHODS, saliency_maps

__all__ = [
    "SALIENCY_METHODS", "ClassScore", "ImageScores", "ScoreResult", "ScoreSettings", "area_fractions",
    "hide_boxes", "probe_classes", "robustness_scores", "saliency_maps", "score_dataset",
]
