"""CE and mCE (spec noc.md §3, and ImageNet-C's). CE is in percent: 100 = as robust as the reference."""
from __future__ import annotations

import math
from collections.abc import Sequence

from rtool.errors import UsageError

CE_FORMS = ("relative", "absolute")


def corruption_error(error: float, clean_error: float | None, reference_error: float,
                     reference_clean_error: float | None, form: str = "relative") -> float:
    """relative: 100 (E_f(c) - E_f(clean)) / (E_ref(c) - E_ref(clean)) (get_CE_scores.py @7a25541);
    absolute: 100 E_f(c) / E_ref(c). NaN when the reference's denominator is 0 (CE undefined)."""
    if form not in CE_FORMS:
        raise UsageError(f"unknown CE form {form!r}; expected one of {', '.join(CE_FORMS)}")
    if form == "absolute":
        return 100.0 * error / reference_error if reference_error > 0 else math.nan
    if clean_error is None or reference_clean_error is None:
        raise UsageError("the relative CE needs clean errors of the model and the reference; use the absolute form")
    denominator = reference_error - reference_clean_error
    return 100.0 * (error - clean_error) / denominator if denominator != 0 else math.nan


def summed_corruption_error(errors: Sequence[float], reference_errors: Sequence[float]) -> float:
    """ImageNet-C's CE: 100 sum_s E_f(s, c) / sum_s E_ref(s, c) over the severities s."""
    total = sum(reference_errors)
    return 100.0 * sum(errors) / total if total > 0 else math.nan


def mean_ce(values: Sequence[float]) -> float:
    """mCE over the corruptions whose CE is defined (NaN when none is)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan
