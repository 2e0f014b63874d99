"""Top-1 hits of a model over an image source under one condition (clean or one corruption), in shards.

The corruption is applied on the device to each batch with the parameters of the images' dataset indices,
so the result does not depend on the batch size, the shard size or the number of torchrun ranks; each
(condition, shard) is saved under `out_dir` and reused on a rerun.
"""
from __future__ import annotations

import torch
from torch import nn

import rtool
from rtool.engine import run_sharded, stable_hash
from rtool.models import check_labels_fit
from rtool.noc.corruptions import corrupt
from rtool.noc.images import ImageSource


def evaluate(model: nn.Module, source: ImageSource, corruption: str | None, *, key: dict, seed: int = 0,
             mode: str = "pil_exact", batch_size: int = 64, shard_size: int = 512, workers: int = 0,
             device: torch.device | None = None, out_dir=None, quiet: bool = True,
             model_name: str = "model", tag: str | None = None) -> dict[str, torch.Tensor] | None:
    """{"hit": bool [N], "pred": int64 [N]} on rank 0 (None on other ranks).

    `key`: everything else that changes the result (the model's and the data's fingerprints, names); the
    shard job key hashes it with the condition, seed and mode. `tag` names the shard folder (readability only).
    """
    if device is None:
        device = next(model.parameters()).device
    labels = source.labels

    def compute(start: int, stop: int) -> dict:
        hits, preds = [], []
        for first in range(start, stop, batch_size):
            last = min(first + batch_size, stop)
            images = source.batch(first, last, workers).to(device)
            if corruption is not None:
                images = corrupt(images, corruption, seed=seed, indices=range(first, last), mode=mode)
            with torch.inference_mode():
                logits = model(source.normalise(images))
            target = labels[first:last].to(device)
            check_labels_fit(logits, target, model_name, source.class_names)
            pred = logits.argmax(dim=1)
            hits.append((pred == target).cpu())
            preds.append(pred.cpu())
        return {"hit": torch.cat(hits), "pred": torch.cat(preds)}

    condition = {"corruption": corruption, "seed": seed, "mode": mode} if corruption is not None else None
    job = stable_hash({"rtool": rtool.__version__, "condition": condition, **key})
    tag = tag or corruption or "clean"
    merged = run_sharded(len(source), compute, out_dir=out_dir, job_key=f"noc-{tag}-{job}", shard_size=shard_size,
                         merge=lambda parts: {k: torch.cat([p[k] for p in parts]) for k in ("hit", "pred")},
                         quiet=quiet, desc=f"{model_name} {tag}")
    return merged
