"""rtool corner: surprise adequacy (DSA0-3, LSA, MDSA), corner-case selection and (from other modules)
the DeepFool robustness radius and the experiment flow. Functions take tensors/models and return
dataclasses; no printing, no file I/O."""
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
    # surprise adequacy (traces.py, surprise.py)
    "DEFAULT_K", "DSA_VARIANTS", "LABEL_SOURCES", "LOGITS", "LSA_VARIANCE_THRESHOLD", "PRESETS", "VARIANTS",
    "DSAResult", "LSAResult", "MDSAResult", "ReferenceSet", "Traces", "activation_traces", "dsa", "lsa", "mdsa",
    "surprise_coverage", "surprise_scores",
    # corner-case selection (selection.py)
    "DEFAULT_CORNER_K", "TIE_BREAK", "CornerCases", "select_corner_cases", "top_k_per_model",
]
