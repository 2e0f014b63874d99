"""`rtool corner`: surprise adequacy (DSA0-3, LSA, MDSA), corner-case selection, the DeepFool robustness
radius and the experiment that ties them together (specs/corner_cases.md).

    import rtool.corner
    result = rtool.corner.run(train, test, rtool.corner.CornerSettings(models=4, corner_cases=15))
    print(result.comparison.mean_before, result.comparison.mean_after)

 Functions take tensors/models and return
dataclasses; no printing, no file I/O."""
from rtool.corner.deepfool import (
    DEEPFOOL_MODES,
    DeepFoolConfig,
    DeepFoolResult,
    RadiusSummary,
    deepfool_batch,
    robustness_radius,
    summarize_radii,
)
from rtool.corner.experiment import (PHASES, CornerExperiment, CornerSettings, ModelRun, PairedComparison,
                                     compare_radii, dataset_surprise, run)
from rtool.corner.planted import plant_mislabels
from rtool.corner.sharded import DEFAULT_SHARD_SIZE, dataset_radius, dataset_traces
from rtool.corner.selection import DEFAULT_CORNER_K, TIE_BREAK, CornerCases, select_corner_cases, top_k_per_model
from rtool.corner.surprise import (
    DEFAULT_K,
    DSA_VARIANTS,
    LABEL_SOURCES,
    LSA_VARIANCE_THRESHOLD,
    PRESETS,
    VARIANTS,
    DSAResult,
    LSAResult,
    MDSAResult,
    ReferenceSet,
    dsa,
    lsa,
    mdsa,
    surprise_coverage,
    surprise_scores,
)
from rtool.corner.traces import LOGITS, Traces, activation_traces

__all__ = [
    # the experiment (experiment.py, planted.py)
    "PHASES", "CornerExperiment", "CornerSettings", "ModelRun", "PairedComparison", "compare_radii",
    "dataset_surprise", "plant_mislabels", "run",
    # surprise adequacy (traces.py, surprise.py)
    "DEFAULT_K", "DSA_VARIANTS", "LABEL_SOURCES", "LOGITS", "LSA_VARIANCE_THRESHOLD", "PRESETS", "VARIANTS",
    "DSAResult", "LSAResult", "MDSAResult", "ReferenceSet", "Traces", "activation_traces", "dsa", "lsa", "mdsa",
    "surprise_coverage", "surprise_scores",
    # DeepFool robustness radius (deepfool.py)
    "DEEPFOOL_MODES", "DeepFoolConfig", "DeepFoolResult", "RadiusSummary", "deepfool_batch", "robustness_radius",
    "summarize_radii",
    # over a whole dataset in resumable shards (sharded.py)
    "DEFAULT_SHARD_SIZE", "dataset_radius", "dataset_traces",
    # corner-case selection (selection.py)
    "DEFAULT_CORNER_K", "TIE_BREAK", "CornerCases", "select_corner_cases", "top_k_per_model",
]
