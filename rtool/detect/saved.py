"""The saved detector file: plain tensors, dicts, lists and numbers only, so `torch.load(weights_only=True)` reads
it and a file from elsewhere cannot run code. A file that cannot be read, or is not an rtool detector of this
format version, is a one-line error naming it.

Layout: {"format": "rtool-detect", "version": 1, "settings": {...DetectSettings}, "layer", "conductance_method",
"mutants": {"seeds", "accuracies", "original_accuracy", "candidates_drawn"}, "conductance_detector": MLP,
"combined_detectors": [MLP, ...], "thresholds": {score: float}, "model_fingerprint", "val_metrics":
{score: {metric: float}}, "identity": {...}}, an MLP being {"features", "hidden", "dropout", "last_only", "state"}.
"""
from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path

import torch

from rtool.detect.detector import DetectorSettings, Metrics, MLPDetector
from rtool.detect.experiment import DetectSettings
from rtool.detect.fitted import SCORES, FittedDetector
from rtool.detect.mutation import MutantSet, MutationSettings
from rtool.engine import atomic_save_torch
from rtool.errors import UsageError

FORMAT = "rtool-detect"
VERSION = 1


def _mlp_record(mlp: MLPDetector) -> dict:
    linears = [m for m in mlp.net if isinstance(m, torch.nn.Linear)]
    dropouts = [i for i, m in enumerate(mlp.net) if isinstance(m, torch.nn.Dropout)]
    hidden = [m.out_features for m in linears[:-1]]
    dropout = float(mlp.net[dropouts[0]].p) if dropouts else 0.0
    return {"features": int(mlp.shift.numel()), "hidden": hidden, "dropout": dropout,
            "last_only": len(dropouts) < len(hidden),
            "state": {k: v.detach().cpu().clone() for k, v in mlp.state_dict().items()}}


def _mlp(record: dict) -> MLPDetector:
    mlp = MLPDetector(int(record["features"]), tuple(int(h) for h in record["hidden"]), float(record["dropout"]),
                      bool(record["last_only"]))
    mlp.load_state_dict(record["state"])
    return mlp.eval()


def _settings_record(settings: DetectSettings) -> dict:
    record = asdict(settings)
    for name in ("detector", "combined"):
        record[name]["hidden"] = list(record[name]["hidden"])
    return record


def _settings(record: dict) -> DetectSettings:
    known = {f.name for f in fields(DetectSettings)}
    values = {k: v for k, v in record.items() if k in known}
    values["mutation"] = MutationSettings(**record["mutation"])
    for name in ("detector", "combined"):
        values[name] = DetectorSettings(**{**record[name], "hidden": tuple(record[name]["hidden"])})
    return DetectSettings(**values)


def detector_record(fitted: FittedDetector) -> dict:
    m = fitted.mutants
    return {
        "format": FORMAT, "version": VERSION, "settings": _settings_record(fitted.settings), "layer": fitted.layer,
        "conductance_method": fitted.conductance_method,
        "mutants": {"seeds": [int(s) for s in m.seeds], "accuracies": [float(a) for a in m.accuracies],
                    "original_accuracy": float(m.original_accuracy), "candidates_drawn": int(m.candidates_drawn)},
        "conductance_detector": _mlp_record(fitted.conductance_detector),
        "combined_detectors": [_mlp_record(d) for d in fitted.combined_detectors],
        "thresholds": {k: float(v) for k, v in fitted.thresholds.items()},
        "model_fingerprint": fitted.model_fingerprint,
        "val_metrics": {k: asdict(v) for k, v in fitted.val_metrics.items()},
        "identity": dict(fitted.identity),
    }


def detector_from_record(record: dict) -> FittedDetector:
    settings = _settings(record["settings"])
    mutants = record["mutants"]
    thresholds = {k: float(v) for k, v in record["thresholds"].items()}
    if set(thresholds) != set(SCORES):
        raise KeyError(f"thresholds for {sorted(thresholds)}")
    return FittedDetector(
        settings=settings, layer=str(record["layer"]), conductance_method=str(record["conductance_method"]),
        mutants=MutantSet(settings=settings.mutation, seeds=tuple(int(s) for s in mutants["seeds"]),
                          accuracies=tuple(float(a) for a in mutants["accuracies"]),
                          original_accuracy=float(mutants["original_accuracy"]),
                          candidates_drawn=int(mutants["candidates_drawn"])),
        conductance_detector=_mlp(record["conductance_detector"]),
        combined_detectors=tuple(_mlp(d) for d in record["combined_detectors"]),
        thresholds=thresholds, model_fingerprint=str(record["model_fingerprint"]),
        val_metrics={k: Metrics(**v) for k, v in record["val_metrics"].items()},
        identity=dict(record.get("identity") or {}))


def save_detector(fitted: FittedDetector, path: str | Path) -> Path:
    """Write the detector file atomically."""
    return atomic_save_torch(path, detector_record(fitted))


def load_detector(path: str | Path) -> FittedDetector:
    """Read a detector file written by `save_detector` (weights_only); a bad file is a one-line UsageError."""
    path = Path(path)
    expected = "expected a detector file written by `rtool detect fit`"
    if not path.is_file():
        raise UsageError(f"detector file {path}: no such file; {expected}")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"detector file {path}: cannot be read ({reason}); {expected}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise UsageError(f"detector file {path}: not an rtool detector; {expected}")
    if record.get("version") != VERSION:
        raise UsageError(f"detector file {path}: format version {record.get('version')!r}; expected version "
                         f"{VERSION} (refit it with this rtool)")
    try:
        return detector_from_record(record)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise UsageError(f"detector file {path}: incomplete or damaged ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); {expected}") from None
