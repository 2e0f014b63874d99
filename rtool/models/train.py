"""Train rtool's small classifiers in seconds, and cache the result under the user's cache directory."""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import rtool
from rtool.engine.distributed import barrier, current
from rtool.engine.hashing import stable_hash
from rtool.engine.io import atomic_save_torch, atomic_write_json
from rtool.engine.paths import cache_dir
from rtool.engine.progress import progress as progress_bar
from rtool.engine.seed import generator, seed_everything
from rtool.errors import UsageError


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2:
        batches.pop()  # BatchNorm cannot train on a batch of one
    return batches


def train_classifier(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int, lr: float,
                     batch_size: int, weight_decay: float = 0.0, seed: int = 0,
                     device: str | torch.device = "cpu", channels_last: bool = True,
                     progress: bool = True, schedule: str = "one_cycle") -> nn.Module:
    """Train `model` on normalised `images` (N,C,H,W float) and integer `labels` (N,); return it in eval mode.

    AdamW with a one-cycle learning-rate schedule peaking at `lr` (`schedule="one_cycle"`) or a constant `lr`
    (`schedule="constant"`; with weight_decay=0 that is plain Adam), cross-entropy loss, reshuffled every epoch
    from `seed` (so the same seed and initial weights give the same model on CPU).
    """
    if schedule not in ("one_cycle", "constant"):
        raise UsageError(f"schedule {schedule!r}: expected one_cycle or constant")
    if images.ndim != 4 or not images.is_floating_point():
        raise UsageError(f"training images must be a float tensor (N, C, H, W), got {tuple(images.shape)} {images.dtype}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise UsageError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if epochs < 1 or batch_size < 1 or images.shape[0] < 2:
        raise UsageError(f"need epochs >= 1, batch_size >= 1 and 2+ images; got {epochs}, {batch_size}, {images.shape[0]}")

    device = torch.device(device)
    seed_everything(seed)  # dropout and any other stochastic layer draw from the global RNG
    gen = generator(seed)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    labels = labels.long()
    steps_per_epoch = len(_batches(images.shape[0], batch_size, generator(seed)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if schedule == "one_cycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    loss_fn = nn.CrossEntropyLoss()

    model.train()
    bar = progress_bar(total=epochs * steps_per_epoch, desc="training", quiet=not progress, unit="step")
    try:
        for epoch in range(epochs):
            total, count = 0.0, 0
            for index in _batches(images.shape[0], batch_size, gen):
                x = images[index].to(device, non_blocking=True).contiguous(memory_format=memory_format)
                y = labels[index].to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += float(loss.detach()) * len(index)
                count += len(index)
                bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{total / max(count, 1):.4f}")
            if not math.isfinite(total):
                raise UsageError(f"training diverged (loss {total}) at epoch {epoch + 1}; lower the learning rate ({lr})")
    finally:
        bar.close()
    return model.to(memory_format=torch.contiguous_format).eval()


def cached_model_path(key: dict[str, Any]) -> Path:
    """Where `cached_model` keeps the model for `key`: `<cache_dir>/models/<name>-<hash>.pt`."""
    full = _full_key(key)
    name = str(full.get("model") or full.get("name") or "model").replace("/", "_")
    return cache_dir() / "models" / f"{name}-{stable_hash(full)}.pt"


def _full_key(key: dict[str, Any]) -> dict[str, Any]:
    return {"rtool_version": rtool.__version__, **key}


def _try_load(model: nn.Module, path: Path) -> bool:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return True
    except Exception as exc:  # a damaged or stale cache entry is retrained, never fatal
        warnings.warn(f"ignoring cached model {path} ({type(exc).__name__}: {exc}); retraining", stacklevel=3)
        return False


def cached_model(key: dict[str, Any], build: Callable[[], nn.Module],
                 train: Callable[[nn.Module], nn.Module], *, collective: bool = True) -> nn.Module:
    """`train(build())`, remembered on disk under a hash of `key`; returns the model in eval mode.

    key: everything that changes the trained weights (dataset recipe, seed, epochs, model name, ...); rtool's
        version is added. Its JSON is written beside the weights for people to read.
    build: makes the untrained model (also used to hold loaded weights, so it must give the same layout).
    Under torchrun (`collective=True`, every rank calls with the same key) only rank 0 trains; the others wait
    and load its file. With `collective=False` each process looks up and trains its own key, no barrier (for
    work split over ranks, e.g. one seed per rank).
    """
    path = cached_model_path(key)
    ctx = current()
    if collective and not path.exists() and ctx.is_distributed:
        if ctx.is_main:
            _train_and_store(key, build, train, path)
        barrier()
    if path.exists():
        model = build()
        if _try_load(model, path):
            return model.eval()
    return _train_and_store(key, build, train, path)


def _train_and_store(key: dict[str, Any], build: Callable[[], nn.Module], train: Callable[[nn.Module], nn.Module],
                     path: Path) -> nn.Module:
    model = train(build()).eval()
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    atomic_save_torch(path, state)
    atomic_write_json(path.with_suffix(".json"), _full_key(key))
    return model
