"""Options every subcommand shares, set on the `rtool` group."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click


@dataclass
class GlobalOptions:
    device: str
    seed: int
    out: Path | None
    quiet: bool
    debug: bool


pass_options = click.make_pass_decorator(GlobalOptions)
