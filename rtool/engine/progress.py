"""Progress bars: tqdm on stderr, shown only to a person watching rank 0."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def _is_rank_zero() -> bool:
    # Read torchrun's environment rather than torch.distributed so a bar never initialises a process group.
    return int(os.environ.get("RANK", "0")) == 0


def progress_enabled(quiet: bool = False) -> bool:
    """True when a bar should be drawn: not quiet, stderr is a terminal, and this is rank 0."""
    if quiet or not _is_rank_zero():
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress(iterable: Iterable[T] | None = None, total: int | None = None, desc: str = "",
             quiet: bool = False, unit: str = "it") -> tqdm:
    """Wrap `iterable` (or make a manual bar when it is None) in a tqdm bar that may be disabled.

    A disabled bar still supports `update()`, `set_postfix()` and `close()`, so callers need no branches.
    """
    return tqdm(iterable, total=total, desc=desc or None, unit=unit, file=sys.stderr,
                disable=not progress_enabled(quiet), leave=False, dynamic_ncols=True)
