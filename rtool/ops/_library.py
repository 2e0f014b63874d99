"""Loads the compiled operators once and says whether that worked, and whether the build is current."""
from __future__ import annotations

from pathlib import Path

import torch

from rtool._sources import sources_hash
from rtool.errors import UsageError

REBUILD = "pip install --no-build-isolation -e ."
_CSRC = Path(__file__).resolve().parents[2] / "csrc"  # present in a source checkout only

try:
    from rtool import _C  # noqa: F401  (importing registers torch.ops.rtool.*)

    LOAD_ERROR: str | None = None
except ImportError as exc:  # not built, or built against another torch: every operator says so when called
    _C = None
    LOAD_ERROR = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class OperatorsUnavailable(UsageError):
    """rtool._C is missing, broken or older than the sources: one line saying how to rebuild."""


def operators_loaded() -> bool:
    return LOAD_ERROR is None


def cuda_compiled() -> bool:
    """True when this build carries CUDA kernels (whether or not a GPU is present)."""
    return operators_loaded() and bool(torch.ops.rtool.cuda_compiled())


def stale_reason() -> str | None:
    """Why the loaded build does not match this checkout's csrc/ (None when it does, or outside a checkout)."""
    if _C is None or not _CSRC.is_dir():
        return None
    built = getattr(_C, "SOURCES_HASH", None)
    if built is None:
        return "rtool._C carries no source fingerprint (built by an older setup.py)"
    current = sources_hash(_CSRC)
    if built != current:
        return f"rtool._C was built from other C++ sources than {_CSRC} holds now"
    return None


_STALE_CHECKED: list[str | None] = []


def require_operators(*names: str) -> None:
    """Raise OperatorsUnavailable (one line: what is wrong and the command that fixes it) unless rtool._C is
    loaded, current, and registers every operator in `names`."""
    if LOAD_ERROR is not None:
        raise OperatorsUnavailable(f"rtool's C++ operators are not built (import rtool._C failed: {LOAD_ERROR}); "
                                   f"rebuild them with `{REBUILD}` in the rtool checkout")
    if not _STALE_CHECKED:
        _STALE_CHECKED.append(stale_reason())
    if _STALE_CHECKED[0] is not None:
        raise OperatorsUnavailable(f"{_STALE_CHECKED[0]}; rebuild them with `{REBUILD}` in the rtool checkout")
    for name in names:
        if not hasattr(torch.ops.rtool, name):
            raise OperatorsUnavailable(f"rtool._C has no operator rtool::{name} (an older build); "
                                       f"rebuild it with `{REBUILD}` in the rtool checkout")
