"""Per-sample hits of a batch of logits, the accuracy every analysis reports beside its own measure."""
from __future__ import annotations

import torch


def top_k_hits(logits: torch.Tensor, labels: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top-1 hit [B] bool, top-k hit [B] bool, predicted class [B]); k is capped at the number of classes."""
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return top[:, 0] == labels, (top == labels[:, None]).any(dim=1), top[:, 0]
