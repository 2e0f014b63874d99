"""The standard ImageNet-C mCE (Hendrycks & Dietterich 2019) on a pre-corrupted folder:
CE_f(c) = 100 sum_s E_f(s, c) / sum_s E_AlexNet(s, c) over the severities s = 1..5, mCE = mean over c.

The published AlexNet numbers are per-corruption means over the severities (rtool.noc.references), and a
mean times 5 is the sum, so CE = 100 mean_s E_f(s, c) / mean_s E_AlexNet(s, c). With `measure:<model>`,
the reference's errors are measured on the same folders.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict

import torch
from torch import nn

from rtool.data.imagenet_c import SEVERITIES
from rtool.engine import current
from rtool.errors import UsageError
from rtool.models import model_fingerprint
from rtool.noc.benchmark import error_of
from rtool.noc.evaluate import evaluate
from rtool.noc.images import ImageSource
from rtool.noc.references import IMAGENET_C_ALEXNET, IMAGENET_C_CORRUPTIONS, measured_model
from rtool.noc.results import CorruptionScore, MceResult
from rtool.noc.scores import mean_ce, summed_corruption_error
from rtool.noc.settings import NOT_IN_RESUME_KEY, ImageNetCSettings


def ordered_corruptions(names) -> tuple[str, ...]:
    """ImageNet-C's own order first, then any other folder in name order."""
    names = set(names)
    return tuple(n for n in IMAGENET_C_CORRUPTIONS if n in names) + tuple(sorted(names - set(IMAGENET_C_CORRUPTIONS)))


def _severity_errors(model: nn.Module, sources: Mapping[tuple[str, int], ImageSource], names, settings, *, key: dict,
                     device, out_dir, quiet: bool, model_name: str, prefix: str = "") -> dict | None:
    out: dict = {}
    for name in names:
        for severity in SEVERITIES:
            source = sources[(name, severity)]
            merged = evaluate(model, source, None, key={**key, "data": source.fingerprint(), "folder": [name, severity]},
                              batch_size=settings.batch_size, shard_size=settings.shard_size,
                              workers=settings.workers, device=device, out_dir=out_dir, quiet=quiet,
                              model_name=model_name, tag=f"{name}-{severity}")
            if merged is not None:
                out[f"{prefix}{name}/{severity}"] = merged
    return out if current().is_main else None


def run_imagenet_c(model: nn.Module, sources: Mapping[tuple[str, int], ImageSource],
                   settings: ImageNetCSettings = ImageNetCSettings(), *, reference_model: nn.Module | None = None,
                   device: torch.device | None = None, out_dir=None, quiet: bool = True, model_name: str = "model",
                   reference_name: str | None = None, identity: dict | None = None) -> MceResult | None:
    """`sources[(corruption, severity)]`: the images of each folder, severities 1-5 of every corruption."""
    names = ordered_corruptions({name for name, _ in sources})
    if not names:
        raise UsageError("no ImageNet-C corruption folders to score")
    for name in names:
        missing = [s for s in SEVERITIES if (name, s) not in sources]
        if missing:
            raise UsageError(f"ImageNet-C corruption {name}: severity {missing[0]} missing; expected severities 1 to 5")
    measured = measured_model(settings.reference)
    if measured is not None and reference_model is None:
        raise UsageError(f"reference {settings.reference!r} needs the reference model to be given")
    if device is None:
        device = next(model.parameters()).device
    model = model.to(device).eval()
    common = {"identity": identity or {}}
    runs = _severity_errors(model, sources, names, settings, key={**common, "model": model_fingerprint(model)},
                            device=device, out_dir=out_dir, quiet=quiet, model_name=model_name)
    reference_runs = None
    if measured is not None:
        reference_model = reference_model.to(device).eval()
        reference_runs = _severity_errors(reference_model, sources, names, settings,
                                          key={**common, "model": model_fingerprint(reference_model)}, device=device,
                                          out_dir=out_dir, quiet=quiet, model_name=reference_name or measured,
                                          prefix="ref:")
    if runs is None:
        return None

    scores = []
    for name in names:
        errors = tuple(error_of(runs[f"{name}/{s}"]["hit"]) for s in SEVERITIES)
        mean_error = sum(errors) / len(errors)
        if reference_runs is not None:
            ref_errors = tuple(error_of(reference_runs[f"ref:{name}/{s}"]["hit"]) for s in SEVERITIES)
            reference_error = sum(ref_errors) / len(ref_errors)
            ce = summed_corruption_error(errors, ref_errors)
        else:
            ref_errors = ()
            reference_error = IMAGENET_C_ALEXNET.get(name)
            ce = summed_corruption_error(errors, [reference_error] * len(SEVERITIES)) if reference_error else float("nan")
        scores.append(CorruptionScore(name=name, error=mean_error, reference_error=reference_error, ce=ce,
                                      n=len(sources[(name, 1)]), severity_errors=errors,
                                      reference_severity_errors=ref_errors))
    if reference_runs is not None:
        runs.update(reference_runs)
    config = {**{k: v for k, v in asdict(settings).items() if k not in NOT_IN_RESUME_KEY},
              "corruptions": list(names), "model": model_name, **(identity or {})}
    return MceResult(benchmark="imagenet-c", scores=tuple(scores), mce=mean_ce([s.ce for s in scores]),
                     ce_form=settings.ce_form, reference=settings.reference, clean_error=None,
                     reference_clean_error=None, n_images=sum(len(s) for s in sources.values()),
                     hits={k: v["hit"] for k, v in runs.items()}, predictions={k: v["pred"] for k, v in runs.items()},
                     config=config)
