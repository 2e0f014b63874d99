"""Device and precision choices from user-facing strings."""
from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator

import torch
from torch import nn

from rtool.errors import UsageError

_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
_NO_AUTOCAST = {"fp32", "float32", "none", ""}


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def resolve_device(spec: str | torch.device) -> torch.device:
    """Turn "auto", "cpu", "cuda" or "cuda:N" into a torch.device that exists on this machine.

    "auto" and "cuda" pick the GPU of this process's LOCAL_RANK when launched by torchrun.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", _local_rank() % torch.cuda.device_count())
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise UsageError(f"unknown device {spec!r}; expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise UsageError(f"device {spec!r} requested but CUDA is not available on this machine; use --device cpu or auto")
    count = torch.cuda.device_count()
    index = int(match.group(1)) if match.group(1) is not None else _local_rank() % count
    if index >= count:
        raise UsageError(f"device {spec!r} does not exist: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


def parse_dtype(dtype: str | None) -> torch.dtype | None:
    """"bf16"/"fp16" → the autocast dtype; None/"fp32" → None (full precision)."""
    if dtype is None:
        return None
    key = dtype.strip().lower()
    if key in _NO_AUTOCAST:
        return None
    if key not in _DTYPES:
        raise UsageError(f"unknown precision {dtype!r}; expected fp32, bf16 or fp16")
    return _DTYPES[key]


@contextlib.contextmanager
def autocast(device: torch.device | str, dtype: str | None) -> Iterator[None]:
    """Mixed precision on `device` for "bf16"/"fp16"; a no-op for None or "fp32"."""
    torch_dtype = parse_dtype(dtype)
    if torch_dtype is None:
        yield
        return
    device_type = torch.device(device).type
    with torch.autocast(device_type=device_type, dtype=torch_dtype):
        yield


@contextlib.contextmanager
def channels_last_model(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Temporarily puts the model's 4-D parameters and buffers in channels_last, restoring the originals after."""
    if not enabled:
        yield
        return
    originals: list[tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.dim() == 4 and not tensor.is_contiguous(memory_format=torch.channels_last):
                originals.append((tensor, tensor.data))
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for tensor, data in originals:
            tensor.data = data
