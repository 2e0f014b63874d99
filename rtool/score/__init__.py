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
from rtool.score.saliency import (SALIENCY_METHODS, ScoreCamResult, auto_batch_size, grad_cam_pp, saliency_maps,
                                  score_cam, score_cam_reference, smooth_grad_cam_pp)
from rtool.score.settings import ScoreSettings, default_bottom_k
from rtool.score.shapes_default import ShapesDefault, load_shapes_default

__all__ = [
    "SALIENCY_METHODS", "ClassScore", "ImageScores", "ScoreCamResult", "ScoreResult", "ScoreSettings",
    "ShapesDefault", "area_fractions", "auto_batch_size", "class_scores", "default_bottom_k", "grad_cam_pp",
    "hide_boxes", "load_shapes_default", "probe_classes", "rank_and_flag", "robustness_scores", "run",
    "saliency_maps", "score_cam", "score_cam_reference", "smooth_grad_cam_pp",
]
