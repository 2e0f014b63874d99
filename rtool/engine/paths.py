"""Where rtool keeps things between runs (trained default models, resumable shards)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$RTOOL_CACHE` if set, else `~/.cache/rtool`; created on demand."""
    env = os.environ.get("RTOOL_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "rtool"
    root.mkdir(parents=True, exist_ok=True)
    return root
