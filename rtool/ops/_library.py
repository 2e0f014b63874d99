"""Loads the compiled operators once and says whether that worked."""
from __future__ import annotations

import torch

try:
    from rtool import _C  # noqa: F401  (importing registers torch.ops.rtool.*)

    LOAD_ERROR: str | None = None
except ImportError as exc:  # not built: everything that needs an operator says so when called
    LOAD_ERROR = str(exc)


def operators_loaded() -> bool:
    return LOAD_ERROR is None


def cuda_compiled() -> bool:
    """True when this build carries CUDA kernels (whether or not a GPU is present)."""
    return operators_loaded() and bool(torch.ops.rtool.cuda_compiled())


def require_operators() -> None:
    if LOAD_ERROR is not None:
        raise RuntimeError(
            "rtool's C++ operators are not built (import rtool._C failed: "
            f"{LOAD_ERROR}); run `pip install --no-build-isolation -e .` in the rtool checkout"
        )
