"""`rtool info`: versions, whether the operators loaded, CUDA, devices, cache."""
from __future__ import annotations

import click

from rtool.info import environment_report


@click.command()
def info() -> None:
    """Print versions, operator and CUDA status, devices and the cache directory."""
    for key, value in environment_report().items():
        click.echo(f"{key + ':':<22}{value}")
