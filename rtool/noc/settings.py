"""Every choice `rtool noc mce` makes, with its default stated once (the CLI reads its defaults from here)."""
from __future__ import annotations

from dataclasses import dataclass

from rtool.errors import UsageError
from rtool.noc.corruptions import MODES
from rtool.noc.references import (IMAGENET_C_REFERENCE, PRESETS, REFERENCE_TABLES, check_reference,
                                  resolve_corruptions)
from rtool.noc.scores import CE_FORMS

# How the work is cut and fed, not what a shard holds (left out of the resume keys).
NOT_IN_RESUME_KEY = ("batch_size", "shard_size", "workers")


def _check_common(settings) -> None:
    for name in ("batch_size", "shard_size"):
        value = getattr(settings, name)
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{name}={value!r}: expected a positive integer")
    if not isinstance(settings.workers, int) or settings.workers < 0:
        raise UsageError(f"workers={settings.workers!r}: expected a non-negative integer")
    if settings.ce_form not in CE_FORMS:
        raise UsageError(f"unknown CE form {settings.ce_form!r}; expected one of {', '.join(CE_FORMS)}")


@dataclass(frozen=True)
class MceSettings:
    """ImageNet-NOC: one random-severity pass per corruption, CE against a reference (spec §2-3)."""

    preset: str = "noc8"
    corruptions: tuple[str, ...] | None = None  # overrides the preset
    ce_form: str = "relative"
    reference: str = "alexnet-2020"              # or resnet50-2020-draft, or measure:<model>
    mode: str = "pil_exact"                      # corruption mode (rtool.noc.MODES)
    seed: int = 0                                # per-image corruption parameters: (seed, corruption, index)
    batch_size: int = 64
    shard_size: int = 512                        # images per resumable (corruption, shard)
    workers: int = 0                             # image-decoding processes (files only)

    def __post_init__(self) -> None:
        if self.corruptions is not None:
            object.__setattr__(self, "corruptions", tuple(self.corruptions))
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        resolve_corruptions(self.preset, self.corruptions)
        check_reference(self.reference, REFERENCE_TABLES)
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; expected one of {', '.join(MODES)}")
        _check_common(self)

    @property
    def names(self) -> tuple[str, ...]:
        return resolve_corruptions(self.preset, self.corruptions)


@dataclass(frozen=True)
class ImageNetCSettings:
    """ImageNet-C: errors summed over the five severities, normalised by AlexNet's (Hendrycks & Dietterich)."""

    corruptions: tuple[str, ...] | None = None  # default: every corruption folder found
    ce_form: str = "absolute"                    # the standard ImageNet-C CE; relative needs clean errors
    reference: str = IMAGENET_C_REFERENCE        # or measure:<model>
    batch_size: int = 64
    shard_size: int = 512
    workers: int = 0

    def __post_init__(self) -> None:
        if self.corruptions is not None:
            object.__setattr__(self, "corruptions", tuple(self.corruptions))
        check_reference(self.reference, {IMAGENET_C_REFERENCE: {}})
        _check_common(self)
        if self.ce_form != "absolute":
            raise UsageError(f"CE form {self.ce_form!r} on imagenet-c: ImageNet-C's mCE is the summed-error "
                             "(absolute) form; expected --ce-form absolute")
