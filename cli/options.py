"""Click options more than one analysis takes. Defaults come from the analysis's settings dataclass
(`default_of`), so each is stated once, in the library."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import click

from rtool.errors import UsageError


def default_of(settings_type: type, name: str):
    """The default of field `name` of a settings dataclass."""
    for f in dataclasses.fields(settings_type):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            return f.default_factory()  # type: ignore[misc]
    raise KeyError(f"{settings_type.__name__} has no field {name!r}")


def _stack(*decorators: Callable) -> Callable:
    def apply(command: Callable) -> Callable:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


def dataset_options(choices: tuple[str, ...], default: str, default_help: str) -> Callable:
    """--dataset and --data-dir."""
    return _stack(
        click.option("--dataset", type=click.Choice(choices), default=default, show_default=True,
                     help=default_help),
        click.option("--data-dir", type=click.Path(path_type=Path), help="Dataset root (real datasets)."),
    )


def model_options(layer_help: str = "Target layer by dotted path (default: the model's last conv block).",
                  model_help: str = "Model name (resnet18, resnet50, resnet152, alexnet, ...).") -> Callable:
    """--model, --weights, --num-classes and --layer (into ModelRequest)."""
    return _stack(
        click.option("--model", "model_name", help=model_help),
        click.option("--weights", help="None, DEFAULT, a torchvision weights name, or a checkpoint path."),
        click.option("--num-classes", type=click.IntRange(min=1), help="Classifier outputs (when they differ from 1000)."),
        click.option("--layer", help=layer_help),
    )


def batch_size_option(settings_type: type, help: str, name: str = "batch_size") -> Callable:
    default = default_of(settings_type, name)
    return click.option("--" + name.replace("_", "-"), name, type=click.IntRange(min=1), default=default,
                        show_default=default is not None, help=help)


def shard_size_option(settings_type: type, unit: str = "Images") -> Callable:
    return click.option("--shard-size", type=click.IntRange(min=1), default=default_of(settings_type, "shard_size"),
                        show_default=True, help=f"{unit} per resumable shard.")


def parse_int_list(option: str, text: str | None) -> tuple[int, ...] | None:
    """`1,4,7` -> (1, 4, 7); a bad list is a one-line error naming the option."""
    if text is None:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: expected comma-separated class indices like 1,4,7") from None
