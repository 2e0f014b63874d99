"""`rtool corner`: surprise adequacy, corner cases and the DeepFool robustness radius (specs/corner_cases.md)."""
from rtool.corner.deepfool import (
    DEEPFOOL_MODES,
    DeepFoolConfig,
    DeepFoolResult,
    RadiusSummary,
    deepfool_batch,
    robustness_radius,
    summarize_radii,
)
