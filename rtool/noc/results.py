"""What `rtool noc mce` computes, as plain frozen data: per-corruption errors and CE, and the mCE."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class CorruptionScore:
    name: str
    error: float                       # top-1 error under the corruption (ImageNet-C: mean over severities)
    reference_error: float | None      # E_ref(c) (ImageNet-C: mean over severities); None: no reference number
    ce: float                          # percent, 100 = as robust as the reference; NaN when undefined
    n: int                             # images per pass
    severity_errors: tuple[float, ...] = ()            # ImageNet-C: severities 1..5
    reference_severity_errors: tuple[float, ...] = ()  # ImageNet-C with measure:<model>

    @property
    def accuracy(self) -> float:
        return 1.0 - self.error

    @property
    def defined(self) -> bool:
        return not math.isnan(self.ce)


@dataclass(frozen=True)
class MceResult:
    benchmark: str                     # "imagenet-noc" or "imagenet-c"
    scores: tuple[CorruptionScore, ...]
    mce: float                         # mean CE over the corruptions with a defined CE
    ce_form: str
    reference: str
    clean_error: float | None          # E_f(clean) (NOC; None for ImageNet-C, which has no clean pass)
    reference_clean_error: float | None
    n_images: int
    # condition ("none", "blur", "blur/3", "ref:blur", ...) -> per-image top-1 hit [N] bool and prediction [N]
    hits: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)
    predictions: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)
    config: dict = field(default_factory=dict)

    def by_name(self) -> dict[str, CorruptionScore]:
        return {s.name: s for s in self.scores}

    @property
    def undefined(self) -> tuple[str, ...]:
        """Corruptions whose CE is undefined (no reference number, or the reference did not degrade)."""
        return tuple(s.name for s in self.scores if not s.defined)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scores)
