"""Benchmark presets and the reference errors CE is normalised by (spec noc.md §2-3), plus ImageNet-C's.

All errors are top-1 error rates in [0, 1]; `none` is the reference model's clean error.
"""
from __future__ import annotations

from rtool.errors import UsageError
from rtool.noc.params import CORRUPTIONS

# ImageNet-NOC as in the repo's benchmark_illustration.png and README ("eight transformations") @7a25541,
# and the seven corruptions get_CE_scores.py actually evaluates at every 2020 commit (spec §2).
PRESETS: dict[str, tuple[str, ...]] = {
    "noc8": ("shear", "rain", "hue", "quantization", "brightness", "border", "blur", "vertical_artifacts"),
    "noc7-code": ("blur", "rotation", "brightness", "rhombus", "quantization", "obstruction", "hue"),
}

# Hard-coded E_ref of get_CE_scores.py @7a25541. The comment there says ResNet-50, but 0.435 is torchvision
# AlexNet's clean error, so the table is AlexNet-normalised (spec §3). `arlequin` is left out: rtool does
# not implement it (it was deleted from CC_Transform).
ALEXNET_2020: dict[str, float] = {
    "none": 0.435, "quantization": 0.592, "gaussian": 0.620, "salt_pepper": 0.649, "blur": 0.570,
    "thumbnail_resize": 0.574, "pixelate": 0.760, "artifacts": 0.746, "vertical_artifacts": 0.758,
    "rhombus": 0.728, "rain": 0.748, "circle": 0.720, "obstruction": 0.597, "border": 0.670,
    "translation": 0.603, "shear": 0.657, "elastic": 0.541, "rotation": 0.711, "backlight": 0.591,
    "brightness": 0.577, "contrast": 0.576, "color_disortion": 0.606, "gray_scale": 0.580, "hue": 0.684,
}
# The June 2020 draft (0732744): torchvision ResNet-50 with the June ranges. Legacy, for comparison only.
# Its `low_res` is the corruption later renamed thumbnail_resize (range 1.2-3.5 then).
RESNET50_2020_DRAFT: dict[str, float] = {
    "none": 0.239, "quantization": 0.445, "gaussian": 0.386, "salt_pepper": 0.459, "blur": 0.330,
    "thumbnail_resize": 0.375, "pixelate": 0.612, "artifacts": 0.529, "vertical_artifacts": 0.487,
    "rhombus": 0.441, "rain": 0.474, "circle": 0.430, "obstruction": 0.327, "border": 0.341,
    "translation": 0.300, "shear": 0.394, "elastic": 0.293, "rotation": 0.500, "backlight": 0.325,
    "brightness": 0.336, "contrast": 0.287, "color_disortion": 0.304, "gray_scale": 0.307, "hue": 0.385,
}
REFERENCE_TABLES: dict[str, dict[str, float]] = {"alexnet-2020": ALEXNET_2020, "resnet50-2020-draft": RESNET50_2020_DRAFT}

# ImageNet-C (Hendrycks & Dietterich, ICLR 2019; github.com/hendrycks/robustness, ImageNet-C/test.py):
# AlexNet's top-1 error on each corruption, averaged over the five severities, as the ImageNet-C authors'
# evaluation gives it (the "raw AlexNet errors taken from github.com/hendrycks/robustness" that
# google-research/augmix's imagenet.py and later code normalise by). mCE = mean over these 15.
IMAGENET_C_CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
    "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
)
IMAGENET_C_ALEXNET: dict[str, float] = dict(zip(IMAGENET_C_CORRUPTIONS, (
    0.886428, 0.894468, 0.922640, 0.819880, 0.826268, 0.785948, 0.798360,
    0.866816, 0.826572, 0.819324, 0.564592, 0.853204, 0.646056, 0.717840, 0.606500,
)))
# The release's four extra corruptions (no published AlexNet numbers: scored only with measure:<model>).
IMAGENET_C_EXTRA: tuple[str, ...] = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
IMAGENET_C_REFERENCE = "alexnet-2019"

MEASURE = "measure:"


def resolve_corruptions(preset: str, corruptions: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The corruptions a NOC run evaluates: an explicit list (checked) or the preset's."""
    if corruptions is not None:
        names = tuple(corruptions)
        if not names:
            raise UsageError("corruptions: the list is empty; expected names like blur,hue")
        for name in names:
            if name not in CORRUPTIONS:
                raise UsageError(f"unknown corruption {name!r}; expected names from {', '.join(CORRUPTIONS)}")
        if len(set(names)) != len(names):
            raise UsageError(f"corruptions {','.join(names)}: a name repeats; expected each once")
        return names
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def measured_model(reference: str) -> str | None:
    """The model name of a `measure:<model>` reference, else None."""
    if not reference.startswith(MEASURE):
        return None
    name = reference[len(MEASURE):].strip()
    if not name:
        raise UsageError(f"reference {reference!r}: expected measure:<model>, e.g. measure:alexnet")
    return name


def check_reference(reference: str, tables: dict[str, dict[str, float]]) -> str:
    if measured_model(reference) is None and reference not in tables:
        raise UsageError(f"unknown reference {reference!r}; expected one of {', '.join(tables)} or measure:<model>")
    return reference
