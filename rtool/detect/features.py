"""The per-input features the detectors use: logits, prediction, conductance of one layer and LCR."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rtool.detect.conductance import ConductanceSettings, layer_conductance
from rtool.detect.mutation import MutantSet, label_change_rate
from rtool.errors import UsageError


@dataclass(frozen=True)
class Features:
    """Features of N inputs; `wrong` marks the predictions that differ from the labels."""

    logits: torch.Tensor           # (N, K) of the unmutated model
    predictions: torch.Tensor      # (N,)
    labels: torch.Tensor           # (N,)
    conductance: torch.Tensor      # (N, C) w.r.t. the predicted class
    conductance_method: str
    lcr: torch.Tensor              # (N,)

    @property
    def wrong(self) -> torch.Tensor:
        return self.predictions != self.labels

    def __len__(self) -> int:
        return int(self.predictions.shape[0])

    def to_record(self) -> dict:
        """Plain tensors and a string (what a shard file holds; loads with weights_only=True)."""
        return {"logits": self.logits, "predictions": self.predictions, "labels": self.labels,
                "conductance": self.conductance, "conductance_method": self.conductance_method, "lcr": self.lcr}

    @staticmethod
    def from_record(record: dict) -> "Features":
        return Features(**{key: record[key] for key in RECORD_KEYS})

    @staticmethod
    def concat(parts: list["Features"]) -> "Features":
        """The rows of `parts` in order (one conductance method)."""
        if not parts:
            raise UsageError("no features to concatenate; expected at least one part")
        methods = {p.conductance_method for p in parts}
        if len(methods) != 1:
            raise UsageError(f"features computed with different conductance methods {sorted(methods)}")
        return Features(**{key: torch.cat([getattr(p, key) for p in parts]) for key in RECORD_KEYS
                           if key != "conductance_method"}, conductance_method=methods.pop())


RECORD_KEYS = ("logits", "predictions", "labels", "conductance", "conductance_method", "lcr")


def extract_features(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     conductance: ConductanceSettings, mutants: MutantSet, batch_size: int = 256) -> Features:
    """Features of `images` (N, C, H, W) with `labels` (N,), `batch_size` inputs at a time."""
    if not isinstance(images, torch.Tensor) or images.dim() < 2 or images.shape[0] == 0:
        raise UsageError(f"feature images: expected a non-empty tensor (N, ...), got "
                         f"{tuple(getattr(images, 'shape', ())) or type(images).__name__}")
    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    if labels.numel() != images.shape[0]:
        raise UsageError(f"feature labels: {labels.numel()} given, expected {images.shape[0]}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    logits, conds, methods = [], [], set()
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start:start + batch_size].to(device)
            with torch.no_grad():
                out = model(x)
            cond = layer_conductance(model, x, conductance, targets=out.argmax(1))
            logits.append(out.cpu())
            conds.append(cond.values.cpu())
            methods.add(cond.method)
    finally:
        model.train(was_training)
    lcr = label_change_rate(model, mutants, images.to(device))
    logits_all = torch.cat(logits)
    return Features(logits=logits_all, predictions=logits_all.argmax(1), labels=labels,
                    conductance=torch.cat(conds), conductance_method=methods.pop(), lcr=lcr.lcr.cpu())
