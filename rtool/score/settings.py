"""Every choice `rtool score` makes, with its default stated once (the CLI reads its defaults from here)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from rtool.errors import UsageError
from rtool.score.saliency import SALIENCY_METHODS

PRECISIONS = ("fp32", "bf16")
PROBE_TARGETS = ("none", "flagged", "all")
CLASS_WEIGHTS = ("softmax", "sigmoid")
# Settings that decide how the work is cut or read afterwards, not what a shard holds (left out of resume keys).
NOT_IN_RESUME_KEY = ("images_per_step", "shard_size", "threshold", "bottom_k", "probe")


@dataclass(frozen=True)
class ScoreSettings:
    """What changes the scores (and so the resume key), how the work is cut, and how classes are flagged."""

    method: str = "scorecam"
    parity: bool = False              # the authors' variant of every method (off: corrected)
    class_weight: str | None = None   # Score-CAM channel weight; None: sigmoid for multi-label datasets, else softmax
    batch_size: int | None = None     # masked images per forward pass (Score-CAM); None: sized to the device
    precision: str = "fp32"           # bf16 approximates the masked passes
    top_k_channels: int | None = None  # approximate Score-CAM with the k most active channels per image
    compile: bool = False             # torch.compile the masked passes (bench/README.md before using it)
    seed: int = 0                     # SmoothGrad-CAM++ noise
    images_per_step: int = 8
    shard_size: int = 64              # images per resumable shard
    threshold: float = 0.3            # flag classes with CRS below this
    bottom_k: int | None = None       # also flag the k lowest; None: 2.5% of the classes, rounded up
    probe: str = "none"               # hide the boxes of the flagged classes, or of all classes

    def __post_init__(self) -> None:
        choices = {"method": (self.method, SALIENCY_METHODS), "precision": (self.precision, PRECISIONS),
                   "probe": (self.probe, PROBE_TARGETS)}
        if self.class_weight is not None:
            choices["class_weight"] = (self.class_weight, CLASS_WEIGHTS)
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise UsageError(f"{name} {value!r} is unknown; expected one of {', '.join(allowed)}")
        for name in ("batch_size", "top_k_channels", "images_per_step", "shard_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UsageError(f"{name}={value!r}: expected a positive integer")
        if self.bottom_k is not None and (not isinstance(self.bottom_k, int) or self.bottom_k < 0):
            raise UsageError(f"bottom_k={self.bottom_k!r}: expected a non-negative integer")
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"threshold={self.threshold!r}: expected a CRS between 0 and 1")
        if self.parity and (self.precision != "fp32" or self.top_k_channels):
            raise UsageError("--parity runs in fp32 over all channels; drop --precision/--top-k-channels")

    def bottom_k_for(self, num_classes: int) -> int:
        return default_bottom_k(num_classes) if self.bottom_k is None else self.bottom_k

    def saliency_options(self, multi_label: bool) -> dict:
        """Keyword options of the saliency method for a dataset (multi-label: per-class sigmoid weights)."""
        if self.method == "scorecam":
            options: dict = {"weight": self.class_weight or ("sigmoid" if multi_label else "softmax")}
            if self.batch_size:
                options["batch_size"] = self.batch_size
            if self.precision == "bf16":
                options["autocast"] = "bf16"
            if self.top_k_channels:
                options["top_k"] = self.top_k_channels
            if self.compile:
                options["compile"] = True
            return options
        if self.method == "smoothgradcampp":
            return {"seed": self.seed}
        return {}


def default_bottom_k(num_classes: int) -> int:
    return math.ceil(0.025 * num_classes)
