"""The output folder of a run: checked before anything is written, and tidied after."""
from __future__ import annotations

import re
from pathlib import Path

from rtool.errors import UsageError


def prepare_out_dir(out_dir: str | Path) -> Path:
    """The output directory, created if needed; a path that is a file is a one-line error."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"output directory {out} is a file; expected a directory (or a path to create)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def remove_stale(folder: Path, name: re.Pattern[str], keep: set[Path]) -> None:
    """Files of an earlier run in `folder` whose names match `name` (only our own) and that this run did not
    write again."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and name.match(path.name) and path not in keep:
            path.unlink(missing_ok=True)
