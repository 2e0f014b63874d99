"""ImageNet-NOC mCE (spec noc.md §2-3): the model's error on clean images and under each benchmark
corruption (one random-severity pass each), CE against a reference, and the mean.

Each condition is its own pass over the data (as in the authors' get_CE_scores.py): files are decoded again
for each, which `workers` spreads over processes; in exchange every (condition, shard) resumes on its own,
and a run with one more corruption computes only that one.

    import rtool.noc
    result = rtool.noc.run_mce(model, source, rtool.noc.MceSettings(preset="noc8"))
    print(result.mce, [(s.name, s.error, s.ce) for s in result.scores])
"""
from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from rtool.engine import current
from rtool.errors import UsageError
from rtool.models import model_fingerprint
from rtool.noc.evaluate import evaluate
from rtool.noc.images import ImageSource
from rtool.noc.references import REFERENCE_TABLES, measured_model
from rtool.noc.results import CorruptionScore, MceResult
from rtool.noc.scores import corruption_error, mean_ce
from rtool.noc.settings import NOT_IN_RESUME_KEY, MceSettings

CLEAN = "none"


def error_of(hits: torch.Tensor) -> float:
    """The top-1 error of per-image hits: misses / images (exact for a fraction like 52/500)."""
    return int((~hits).sum()) / hits.numel() if hits.numel() else float("nan")


def evaluate_conditions(model: nn.Module, source: ImageSource, names: tuple[str, ...], settings, *, key: dict,
                        device, out_dir, quiet: bool, model_name: str, prefix: str = "") -> dict | None:
    """{condition: {"hit", "pred"}} for the clean pass and every corruption in `names` (rank 0; None elsewhere)."""
    out: dict = {}
    for name in (None, *names):
        merged = evaluate(model, source, name, key=key, seed=settings.seed, mode=settings.mode,
                          batch_size=settings.batch_size, shard_size=settings.shard_size, workers=settings.workers,
                          device=device, out_dir=out_dir, quiet=quiet, model_name=model_name)
        if merged is not None:
            out[prefix + (name or CLEAN)] = merged
    return out if current().is_main else None


def run_mce(model: nn.Module, source: ImageSource, settings: MceSettings = MceSettings(), *,
            reference_model: nn.Module | None = None, device: torch.device | None = None, out_dir=None,
            quiet: bool = True, model_name: str = "model", reference_name: str | None = None,
            identity: dict | None = None) -> MceResult | None:
    """Score `model` on `source` under the settings' corruptions. Returns the result on rank 0, None on other
    torchrun ranks. `reference_model` is required (and only used) for a `measure:<model>` reference: it is
    run on the very same corrupted images. `out_dir`: where the (condition, shard) results are kept (resume).
    `identity`: facts that change the results beyond the weights and the data (names), for the resume key."""
    if len(source) == 0:
        raise UsageError("the dataset has no images to score")
    measured = measured_model(settings.reference)
    if measured is not None and reference_model is None:
        raise UsageError(f"reference {settings.reference!r} needs the reference model to be given")
    if device is None:
        device = next(model.parameters()).device
    names = settings.names
    common = {"data": source.fingerprint(), "identity": identity or {}}
    model = model.to(device).eval()
    conditions = evaluate_conditions(model, source, names, settings, key={**common, "model": model_fingerprint(model)},
                                     device=device, out_dir=out_dir, quiet=quiet, model_name=model_name)
    reference_conditions = None
    if measured is not None:
        reference_model = reference_model.to(device).eval()
        reference_conditions = evaluate_conditions(
            reference_model, source, names, settings, key={**common, "model": model_fingerprint(reference_model)},
            device=device, out_dir=out_dir, quiet=quiet, model_name=reference_name or measured, prefix="ref:")
    if conditions is None:
        return None

    errors = {name: error_of(c["hit"]) for name, c in conditions.items()}
    if reference_conditions is not None:
        conditions.update(reference_conditions)
        table = {name: error_of(reference_conditions["ref:" + name]["hit"]) for name in (CLEAN, *names)}
    else:
        table = REFERENCE_TABLES[settings.reference]
    scores = tuple(
        CorruptionScore(name=name, error=errors[name], reference_error=table[name], n=len(source),
                        ce=corruption_error(errors[name], errors[CLEAN], table[name], table[CLEAN], settings.ce_form))
        for name in names)
    config = {**{k: v for k, v in asdict(settings).items() if k not in NOT_IN_RESUME_KEY},
              "corruptions": list(names), "model": model_name, **(identity or {})}
    return MceResult(benchmark="imagenet-noc", scores=scores, mce=mean_ce([s.ce for s in scores]),
                     ce_form=settings.ce_form, reference=settings.reference, clean_error=errors[CLEAN],
                     reference_clean_error=table[CLEAN], n_images=len(source),
                     hits={k: v["hit"] for k, v in conditions.items()},
                     predictions={k: v["pred"] for k, v in conditions.items()}, config=config)
