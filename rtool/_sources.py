"""The fingerprint of the C++/CUDA sources a build of rtool._C was made from.

setup.py bakes it into the extension; at import, a source checkout compares it with its csrc/ to tell a
stale build from a current one. Standard library only: setup.py loads this file before rtool is importable.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

SOURCE_SUFFIXES = (".cpp", ".h", ".cu", ".cuh")
# Letters only, so the fingerprint passes through compiler command lines as a bare -D token.
_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def sources_hash(csrc: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in csrc.rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file()):
        digest.update(path.relative_to(csrc).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16].translate(_LETTERS)
