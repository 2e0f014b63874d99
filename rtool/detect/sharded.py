"""Mutant acceptance and feature extraction over a whole split, resumable and spread over torchrun ranks.

Acceptance runs once, on rank 0, before any feature is extracted (it is seeded, so a rerun accepts the same
mutants); its result is kept on disk like a shard and sent to every rank. Features are then computed in fixed
shards of inputs through `rtool.engine.run_sharded`: every rank takes a block of shards, rank 0 merges them in
order (the merged features do not depend on the number of ranks), and a rerun reuses the shards already written.
The job keys name everything that changes the results: rtool's version, the model's fingerprint, the inputs'
fingerprint, the split and the settings that reach the features (not the detector's).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

import rtool
from rtool.detect.conductance import ConductanceSettings
from rtool.detect.features import Features, extract_features
from rtool.detect.mutation import MutantSet, MutationSettings, accepted_mutants
from rtool.engine import broadcast_from_rank0, run_sharded, stable_hash
from rtool.errors import UsageError
from rtool.models import model_fingerprint


def tensor_fingerprint(*tensors: torch.Tensor) -> str:
    """sha256 (16 hex digits) of the shapes and bytes of `tensors` (inputs without a dataset fingerprint)."""
    digest = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(repr((tuple(t.shape), str(t.dtype))).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


def _mutation_key(settings: MutationSettings) -> dict:
    # the batch sizes only group the work; they do not change which mutants pass
    return {k: v for k, v in asdict(settings).items() if k not in ("mutant_batch", "input_batch")}


def sharded_mutants(model: nn.Module, val_images: torch.Tensor, val_labels: torch.Tensor,
                    settings: MutationSettings, *, data_key: str, out_dir: str | Path | None = None,
                    quiet: bool = True) -> MutantSet:
    """`accepted_mutants` on the validation inputs, computed once (rank 0, kept under `out_dir`), on every rank."""
    key = stable_hash({"rtool": rtool.__version__, "model": model_fingerprint(model), "data": data_key,
                       "mutation": _mutation_key(settings)})

    def compute(start: int, stop: int) -> dict:
        found = accepted_mutants(model, val_images, val_labels, settings)
        return {"seeds": list(found.seeds), "accuracies": list(found.accuracies),
                "original_accuracy": found.original_accuracy, "candidates_drawn": found.candidates_drawn}

    merged = run_sharded(1, compute, out_dir=out_dir, job_key=f"detect-mutants-{key}", shard_size=1,
                         merge=lambda parts: parts[0], quiet=True, desc="mutants")
    record = broadcast_from_rank0(merged)
    return MutantSet(settings=settings, seeds=tuple(int(s) for s in record["seeds"]),
                     accuracies=tuple(float(a) for a in record["accuracies"]),
                     original_accuracy=float(record["original_accuracy"]),
                     candidates_drawn=int(record["candidates_drawn"]))


def features_key(model: nn.Module, data_key: str, split: str, conductance: ConductanceSettings,
                 mutants: MutantSet, batch_size: int) -> str:
    """The job key of the features of one split (rtool version, model, inputs, split, settings, mutants)."""
    return stable_hash({
        "rtool": rtool.__version__, "model": model_fingerprint(model), "data": data_key, "split": split,
        "conductance": {k: v for k, v in asdict(conductance).items() if k != "max_rows"},
        "mutation": _mutation_key(mutants.settings), "seeds": list(mutants.seeds), "batch_size": batch_size,
    })


def sharded_features(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     conductance: ConductanceSettings, mutants: MutantSet, *, data_key: str, split: str,
                     batch_size: int = 256, shard_size: int = 256, out_dir: str | Path | None = None,
                     quiet: bool = True) -> Features | None:
    """`extract_features` of `images` in shards of `shard_size` inputs; the merged features on rank 0, else None.

    `data_key`: a fingerprint of the inputs (ClassificationData.fingerprint() of the split, or
    `tensor_fingerprint`); `split`: its name, both part of the resume key.
    """
    if images.shape[0] == 0:
        raise UsageError(f"split {split!r} has no images; expected at least one")
    if shard_size < 1:
        raise UsageError(f"detect shard_size {shard_size!r}: expected an integer >= 1")
    # every shard regenerates the mutants from their seeds; one shard's inputs per LCR pass is plenty
    mutants = replace(mutants, settings=replace(mutants.settings,
                                                input_batch=min(mutants.settings.input_batch, shard_size)))
    key = features_key(model, data_key, split, conductance, mutants, batch_size)

    def compute(start: int, stop: int) -> dict:
        return extract_features(model, images[start:stop], labels[start:stop], conductance, mutants,
                                batch_size).to_record()

    merged = run_sharded(images.shape[0], compute, out_dir=out_dir, job_key=f"detect-{split}-{key}",
                         shard_size=shard_size, merge=lambda parts: parts, quiet=quiet, desc=f"features {split}")
    if merged is None:
        return None
    return Features.concat([Features.from_record(part) for part in merged])
