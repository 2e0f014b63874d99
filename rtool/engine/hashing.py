"""Stable short hashes of JSON-able keys (cache file names, shard job keys)."""
from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace variation; non-JSON values (paths, dtypes) become str."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hex sha256 prefix of `canonical_json(obj)`: equal keys give equal hashes across runs and machines."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:length]
