"""Atomic file writing: a reader (or a resumed run) sees the old file or the new one, never half of one.

Each writer puts the data in a temporary file in the destination's directory (same file system), flushes it
to disk and renames it over the destination with os.replace.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _temp_path(path: Path) -> Path:
    # Keep the suffix: matplotlib's savefig and friends pick the format from it.
    return path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")


def _finish(tmp: Path, path: Path) -> None:
    with open(tmp, "rb+") as handle:
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; it replaces `path` on success, is removed on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to the temporary file for {path}")
        _finish(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """JSON with sorted keys; non-JSON values (paths, dtypes) are written as strings."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=str) + "\n")


def atomic_save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """torch.save `obj` atomically. Keep `obj` to tensors and plain containers so weights_only loading works."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
