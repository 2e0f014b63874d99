"""Shared pieces of the Score-CAM benchmarks: the cases, the parity reference, the forward-pass floor, the anchors.

A case is a model, its Score-CAM target layer, a batch of images and their targets: the two torchvision resnets
(random weights, seeded) on one 224x224 image, and the trained `shapes` model on 32 of its validation images at
64x64. Everything that is not timed (reference maps, activations) is computed once per session and cached.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from rtool.models import build_model, default_target_layer, get_layer
from rtool.engine import channels_last_model
from rtool.score import score_cam_reference

MODEL_NAMES = ("shapes", "resnet18", "resnet50")
SHAPES_IMAGES = 32


@dataclass(eq=False)  # hashed by identity: load_case hands out one object per case
class Case:
    name: str
    model: nn.Module
    layer: nn.Module
    images: torch.Tensor  # [B, 3, H, W] on the case's device
    targets: torch.Tensor  # [B] int64

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def num_images(self) -> int:
        return self.images.shape[0]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@cache
def load_case(name: str, device: str = "cpu") -> Case:
    """The benchmark case `name` (one of MODEL_NAMES) on `device`; the same tensors every call."""
    if name == "shapes":
        from rtool.score import load_shapes_default

        default = load_shapes_default(quiet=True)
        model = default.model.eval().to(device)
        layer = get_layer(model, default.layer_name)
        dataset = default.dataset
        # spread over the validation split, which is ordered by class, so every class is in the batch
        picks = torch.linspace(0, len(dataset) - 1, SHAPES_IMAGES).long().tolist()
        images = torch.stack([dataset[i].image for i in picks])
        targets = torch.tensor([dataset[i].label for i in picks])
    else:
        torch.manual_seed(0)
        model = build_model(name)  # weights=None: random init, eval mode
        layer = get_layer(model, default_target_layer(name))
        images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            targets = model(images).argmax(dim=1)  # explain the predicted class, as a user would
        model = model.to(device)
    return Case(name, model, layer, images.to(device), targets.to(device))


def with_dead_channels(case: Case, fraction: float = 0.5) -> Case:
    """A copy of `case` whose target layer outputs exactly zero on every other channel (`fraction` = 1/2).

    The resnets' target is a bias-free conv (zero filters give zero maps); the shapes target is conv, BN, ReLU
    (a BN with zero scale and shift gives zero maps). The maps of such channels are all zero, so Score-CAM may
    skip them: this case shows whether the time falls in proportion to the channels skipped.
    """
    step = round(1 / fraction)
    model = copy.deepcopy(case.model)
    layer = next(m for m, orig in zip(model.modules(), case.model.modules()) if orig is case.layer)
    with torch.no_grad():
        if isinstance(layer, nn.Conv2d):
            layer.weight[::step] = 0
            if layer.bias is not None:
                layer.bias[::step] = 0
        else:
            norm = next(m for m in layer.modules() if isinstance(m, nn.BatchNorm2d))
            norm.weight[::step] = 0
            norm.bias[::step] = 0
    return Case(f"{case.name} dead 1/{step}", model, layer, case.images, case.targets)


@cache
def load_dead_case(name: str, device: str = "cpu") -> Case:
    return with_dead_channels(load_case(name, device))


def parity_reference(case: Case) -> torch.Tensor:
    """The authors' loop (score_cam_reference, chunks of 32) image by image: maps [B, H, W]."""
    maps = [score_cam_reference(case.model, case.layer, case.images[i:i + 1], int(case.targets[i]))
            for i in range(case.num_images)]
    return torch.stack(maps)


_REFERENCE_MAPS: dict[str, torch.Tensor] = {}


def store_reference(case: Case, maps: torch.Tensor) -> None:
    _REFERENCE_MAPS[f"{case.name} {case.device}"] = maps


def reference_maps(case: Case) -> torch.Tensor:
    """The parity reference maps of `case`, computed (untimed) on first use unless a benchmark stored them."""
    key = f"{case.name} {case.device}"
    if key not in _REFERENCE_MAPS:
        _REFERENCE_MAPS[key] = parity_reference(case)
    return _REFERENCE_MAPS[key]


def max_abs_diff(maps: torch.Tensor, reference: torch.Tensor) -> float:
    """max |maps - reference|; NaN (a constant combined map) must sit where the reference has NaN, else inf."""
    maps, reference = maps.float().cpu(), reference.float().cpu()
    if bool((maps.isnan() != reference.isnan()).any()):
        return math.inf
    finite = ~reference.isnan()
    return float((maps - reference)[finite].abs().max()) if bool(finite.any()) else 0.0


def mean_abs_diff(maps: torch.Tensor, reference: torch.Tensor) -> float:
    diff = (maps.float().cpu() - reference.float().cpu()).abs()
    return float(diff.nan_to_num(nan=1.0).mean())


def pearson(maps: torch.Tensor, reference: torch.Tensor) -> float:
    """Correlation over all pixels of the batch (NaN pixels dropped): a sanity check across normalisations."""
    a, b = maps.float().cpu().flatten(), reference.float().cpu().flatten()
    keep = ~(a.isnan() | b.isnan())
    return float(torch.corrcoef(torch.stack([a[keep], b[keep]]))[0, 1])


@cache
def _clean_activations(case: Case) -> torch.Tensor:
    captured = []
    handle = case.layer.register_forward_hook(lambda module, inputs, output: captured.append(output.detach().float()))
    try:
        with torch.inference_mode():
            case.model(case.images)
    finally:
        handle.remove()
    return captured[0]


def evaluated_rows(case: Case, *, top_k: int | None = None, skip_zero_channels: bool = True) -> int:
    """Masked rows the parity fast path forwards: channels with a nonzero ReLU map, the top_k of them if set."""
    activations = _clean_activations(case)
    batch, channels = activations.shape[:2]
    if skip_zero_channels:
        per_image = (activations.relu().flatten(2) > 0).any(dim=2).sum(dim=1)
    else:
        per_image = torch.full((batch,), channels)
    if top_k is not None:
        per_image = per_image.clamp(max=top_k)
    return int(per_image.sum())


def num_channels(case: Case) -> int:
    return _clean_activations(case).shape[1]


def _chunks(rows: int, batch_size: int) -> list[int]:
    return [min(batch_size, rows - first) for first in range(0, rows, batch_size)]


class ForwardFloor:
    """The forward passes Score-CAM cannot avoid, and nothing else.

    The clean pass of the case's images and `masked_rows` masked rows, in the same chunks of `batch_size` as
    score_cam, on random inputs of the same shape, with the model in channels_last like the fast path.
    Calling it returns (seconds_clean, seconds_masked).
    """

    def __init__(self, case: Case, masked_rows: int, batch_size: int, channels_last: bool = True):
        self.case = case
        self.channels_last = channels_last
        layout = torch.channels_last if channels_last else torch.contiguous_format
        shape = (min(batch_size, max(masked_rows, case.num_images)), *case.images.shape[1:])
        generator = torch.Generator().manual_seed(2)
        self.buffer = torch.randn(shape, generator=generator).to(case.device).contiguous(memory_format=layout)
        self.clean = _chunks(case.num_images, batch_size)
        self.masked = _chunks(masked_rows, batch_size)

    def __call__(self) -> tuple[float, float]:
        model, device = self.case.model, self.case.device
        with channels_last_model(model, self.channels_last), torch.inference_mode():
            sync(device)
            start = time.perf_counter()
            for rows in self.clean:
                model(self.buffer[:rows])
            sync(device)
            middle = time.perf_counter()
            for rows in self.masked:
                model(self.buffer[:rows])
            sync(device)
        return middle - start, time.perf_counter() - middle


def gradcam_maps(case: Case, batch_size: int | None = None) -> torch.Tensor:
    """pytorch-grad-cam's ScoreCAM on the case, as a user would call it (its default batch of 16): [B, H, W]."""
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = [ClassifierOutputTarget(int(t)) for t in case.targets]
    with ScoreCAM(model=case.model, target_layers=[case.layer]) as cam:
        if batch_size is not None:
            cam.batch_size = batch_size
        maps = cam(input_tensor=case.images, targets=targets)
    return torch.from_numpy(maps)


def timed(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """`fn` followed by a device sync, so that a benchmark round covers the work it launched."""

    def call():
        out = fn()
        sync(device)
        return out

    return call


def environment() -> dict[str, object]:
    """What else was running: the 1-minute load average against the cores, and torch's thread count."""
    return {"loadavg_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}


def summarize(path: str) -> str:
    """Markdown tables (as in bench/README.md) from a `--benchmark-json` file of these benchmarks."""
    import json

    runs = json.load(open(path))["benchmarks"]
    lines: list[str] = []
    by_group: dict[str, list[dict]] = {}
    for run in runs:
        by_group.setdefault(run["group"], []).append(run)
    for group, members in by_group.items():
        if not group.startswith("scorecam "):
            continue
        variants = group.startswith("scorecam variants")
        base = next((m for m in members if m["param"].endswith("rtool") or m["extra_info"].get("is_default")),
                    members[0])
        lines += [f"\n{group}\n", "| case | s / image (min) | x rtool default | to paired floor | evaluated / total "
                  "| masks s | forward s | other s | max abs diff | load |", "|---|---|---|---|---|---|---|---|---|---|"]
        for m in sorted(members, key=lambda m: m["stats"]["min"]):
            e = m["extra_info"]
            name = m["param"].split("-", 2)[-1] if not variants else m["param"].split("-")[-1]

            def num(key, fmt="{:.3g}"):
                return fmt.format(e[key]) if e.get(key) is not None else "–"

            diff = e.get("max_abs_diff_vs_reference", e.get("sanity_max_abs_diff_vs_reference"))
            lines.append(
                f"| {name} | {m['stats']['min'] / e['images']:.3g} | {m['stats']['min'] / base['stats']['min']:.2f} "
                f"| {num('ratio_to_floor', '{:.3f}')} | {e.get('channels_evaluated', '–')} / {e.get('channels_total', '–')} "
                f"| {num('seconds_masks')} | {num('seconds_forward')} | {num('seconds_other')} "
                f"| {'–' if diff is None else f'{diff:.2g}'} | {e.get('loadavg_1min', '–')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(summarize(sys.argv[1]))
