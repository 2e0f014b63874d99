"""Traces and DeepFool radii over a whole dataset in resumable shards, split over torchrun ranks.

The forward passes (traces) and the DeepFool iterations are what cost time on a large dataset or model, so
they run through `rtool.engine.run_sharded`: shard i covers images [i*shard_size, (i+1)*shard_size), saved as
it finishes and reused by a rerun with the same model, data and settings. With a shard size that is a
multiple of the batch size (the defaults) every batch is the one an unsharded run would make, so the merged
result is the single-process result whatever the number of ranks. The surprise scores themselves (k-NN over
the merged traces) are cheap and run once on rank 0.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

import rtool
from rtool.corner.deepfool import DeepFoolConfig, DeepFoolResult, robustness_radius
from rtool.corner.traces import Traces, activation_traces
from rtool.data.classification import ClassificationData
from rtool.engine import run_sharded, stable_hash
from rtool.models.request import model_fingerprint

DEFAULT_SHARD_SIZE = 1024   # images per shard: four batches of the default 256


def _job_key(kind: str, model: nn.Module, data: ClassificationData, device: torch.device, **settings) -> str:
    return f"corner-{kind}-" + stable_hash({"rtool": rtool.__version__, "model": model_fingerprint(model),
                                            "data": data.fingerprint(), "n": len(data), "device": device.type,
                                            **settings})


def dataset_traces(model: nn.Module, data: ClassificationData, layers: tuple[str, ...], *, batch_size: int,
                   device: torch.device | str, dropout: bool = False, out_dir: str | Path | None = None,
                   shard_size: int = DEFAULT_SHARD_SIZE, quiet: bool = True) -> Traces | None:
    """`activation_traces` of every image of `data` (with its labels); None on torchrun ranks other than 0.

    With `dropout` (the authors' quirk) each shard draws its masks from the seed of its first image index.
    """
    device = torch.device(device)
    model = model.to(device)

    def compute(start: int, stop: int) -> dict:
        traces = activation_traces(model, data.images[start:stop], layers, labels=data.labels[start:stop],
                                   batch_size=batch_size, device=device, dropout=dropout, seed=start)
        return {"values": traces.values, "predictions": traces.predictions, "labels": traces.labels,
                "widths": list(traces.widths)}

    def merge(parts: list[dict]) -> Traces:
        return Traces(torch.cat([p["values"] for p in parts]), torch.cat([p["predictions"] for p in parts]),
                      torch.cat([p["labels"] for p in parts]), tuple(layers), tuple(parts[0]["widths"]))

    key = _job_key("traces", model, data, device, layers=list(layers), batch_size=batch_size, dropout=dropout)
    return run_sharded(len(data), compute, out_dir=out_dir, job_key=key, shard_size=shard_size, merge=merge,
                       quiet=quiet, desc=f"traces of {data.name} {data.split}")


_RADIUS_FIELDS = ("radius", "rho", "iterations", "converged", "label", "final_label")


def dataset_radius(model: nn.Module, data: ClassificationData, config: DeepFoolConfig, *, batch_size: int,
                   device: torch.device | str, out_dir: str | Path | None = None,
                   shard_size: int = DEFAULT_SHARD_SIZE, quiet: bool = True) -> DeepFoolResult | None:
    """`robustness_radius` of every image of `data`; None on torchrun ranks other than 0."""
    device = torch.device(device)
    model = model.to(device)

    def compute(start: int, stop: int) -> dict:
        result = robustness_radius(model, data.images[start:stop], config, batch_size=batch_size, quiet=True)
        return {name: getattr(result, name) for name in _RADIUS_FIELDS}

    def merge(parts: list[dict]) -> DeepFoolResult:
        return DeepFoolResult(**{name: torch.cat([p[name] for p in parts]) for name in _RADIUS_FIELDS},
                              config=config)

    key = _job_key("deepfool", model, data, device, config=asdict(config), batch_size=batch_size)
    return run_sharded(len(data), compute, out_dir=out_dir, job_key=key, shard_size=shard_size, merge=merge,
                       quiet=quiet, desc=f"DeepFool on {data.name} {data.split}")
