"""Score-CAM per image: rtool's fast path vs the authors' loop vs pytorch-grad-cam vs the forward-pass floor.

Group "scorecam <model> <device>" holds the four side by side (floor, reference loop, pytorch-grad-cam, rtool),
so each ratio reads off one run; group "scorecam variants <model> <device>" holds rtool with one option changed
(batch size, channels_last off, no zero-channel skipping, bf16 autocast, top_k = C/4, compile=True, and a copy of
the model with half of the target channels dead, which shows whether the time falls with the channels skipped).

Every rtool round is paired with a floor measured just before it (pedantic's untimed `setup`): the clean pass
plus the masked rows actually evaluated, as bare forward passes at the same batch size and layout. extra_info
records that floor, the time split (masks / forward / other), the channels evaluated and skipped, and the map
error against the parity reference (score_cam_reference, the authors' loop), which exact options must meet
(<= 1e-5, asserted: a check of behaviour, never of timing).

Models: `shapes` (the trained embedded default, 32 validation images at 64x64), resnet18 and resnet50 (random
weights, one 224x224 image). resnet50 costs minutes per round: select with `-k resnet50` or leave out with
`-k "not resnet50"`.
"""
from __future__ import annotations

import time

import pytest
import torch

from _scorecam_anchor import (
    MODEL_NAMES,
    ForwardFloor,
    environment,
    evaluated_rows,
    gradcam_maps,
    load_case,
    load_dead_case,
    max_abs_diff,
    mean_abs_diff,
    num_channels,
    parity_reference,
    pearson,
    reference_maps,
    store_reference,
    timed,
)
from rtool.score import auto_batch_size, score_cam

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROUNDS = {"shapes": 5, "resnet18": 3, "resnet50": 1}
WARMUP_ROUNDS = {"shapes": 1, "resnet18": 0, "resnet50": 0}
PARITY_TOLERANCE = 1e-5

# fastest round of each implementation in this session, so the rtool case can state its ratio to the anchors
_FASTEST: dict[tuple[str, str, str], float] = {}


def _pedantic(benchmark, name: str, fn, setup=None) -> list[float]:
    """Runs fn under benchmark.pedantic; returns the wall time of each counted round (warm-ups left out)."""
    seconds: list[float] = []

    def call():
        start = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - start)
        return out

    benchmark.pedantic(call, setup=setup, rounds=ROUNDS[name], warmup_rounds=WARMUP_ROUNDS[name])
    return seconds[-ROUNDS[name]:]


def _run_rtool(benchmark, case, name: str, **options) -> dict[str, object]:
    """Benchmarks score_cam(**options) on `case`, each round paired with its floor; returns extra_info entries.

    The authors' variant unless `options` say otherwise: the maps are compared with the parity reference."""
    options = {"mode": "parity", **options}
    top_k = options.get("top_k")
    skip = options.get("skip_zero_channels", True)
    rows = evaluated_rows(case, top_k=top_k, skip_zero_channels=skip)
    batch_size = options.get("batch_size") or auto_batch_size(case.images)  # what score_cam picks when not told
    floor = ForwardFloor(case, rows, batch_size, channels_last=options.get("channels_last", True))
    floors: list[tuple[float, float]] = []
    results = []

    def run():
        result = score_cam(case.model, case.layer, case.images, case.targets, **options)
        results.append(result)
        return result

    totals = _pedantic(benchmark, name, timed(run, case.device), setup=lambda: floors.append(floor()))
    results, floors = results[-len(totals):], floors[-len(totals):]
    best = min(range(len(totals)), key=totals.__getitem__)
    result = results[best]
    assert result.channels_evaluated == rows  # the floor counted the rows score_cam actually forwarded
    floor_clean = min(clean for clean, _ in floors)
    floor_masked = min(masked for _, masked in floors)
    reference = reference_maps(case)
    return {
        "images": case.num_images,
        "batch_size": batch_size,
        "seconds": totals[best],
        "per_image_seconds": totals[best] / case.num_images,
        "channels_total": result.channels_total,
        "channels_evaluated": result.channels_evaluated,
        "skip_fraction": result.skip_fraction,
        "forward_batches": result.forward_batches,
        "seconds_masks": result.seconds_masks,
        "seconds_forward": result.seconds_forward,
        "seconds_other": result.seconds_other,
        # seconds_other holds the clean pass too; what is left after the floor's clean pass is bookkeeping
        "seconds_bookkeeping": max(0.0, result.seconds_other - floor_clean),
        "floor_seconds": floor_clean + floor_masked,
        "floor_clean_seconds": floor_clean,
        "floor_masked_seconds": floor_masked,
        "ratio_to_floor": totals[best] / (floor_clean + floor_masked),
        "forward_to_floor_masked": result.seconds_forward / floor_masked if floor_masked else None,
        "max_abs_diff_vs_reference": max_abs_diff(result.maps, reference),
        "mean_abs_diff_vs_reference": mean_abs_diff(result.maps, reference),
        **environment(),
    }


@pytest.mark.parametrize("implementation", ["floor", "reference", "pytorch-grad-cam", "rtool"])
@pytest.mark.parametrize("model_name", MODEL_NAMES)
@pytest.mark.parametrize("device", DEVICES)
def test_scorecam(benchmark, device, model_name, implementation):
    case = load_case(model_name, device)
    benchmark.group = f"scorecam {model_name} {device}"
    info = benchmark.extra_info
    info["images"] = case.num_images
    info["channels_total"] = case.num_images * num_channels(case)

    if implementation == "floor":
        rows = evaluated_rows(case)
        batch_size = auto_batch_size(case.images)
        floor = ForwardFloor(case, rows, batch_size)
        splits = []
        seconds = _pedantic(benchmark, model_name, lambda: splits.append(floor()))
        info.update(channels_evaluated=rows, batch_size=batch_size, floor_clean_seconds=min(c for c, _ in splits),
                    floor_masked_seconds=min(m for _, m in splits))
    elif implementation == "reference":
        maps = []
        seconds = _pedantic(benchmark, model_name, timed(lambda: maps.append(parity_reference(case)), case.device))
        store_reference(case, maps[-1])
        info["channels_evaluated"] = info["channels_total"]
    elif implementation == "pytorch-grad-cam":
        pytest.importorskip("pytorch_grad_cam", reason="install the bench extra: pip install -e '.[bench]'")
        maps = []
        seconds = _pedantic(benchmark, model_name, timed(lambda: maps.append(gradcam_maps(case)), case.device))
        reference = reference_maps(case)
        # different normalisation (min-max with eps, align_corners=True, softmax over channels): sanity only
        info.update(channels_evaluated=info["channels_total"],
                    sanity_max_abs_diff_vs_reference=max_abs_diff(maps[-1], reference.cpu()),
                    sanity_pearson_vs_reference=pearson(maps[-1], reference))
    else:
        info.update(_run_rtool(benchmark, case, model_name))
        seconds = [info["seconds"]]
        for anchor in ("reference", "pytorch-grad-cam", "floor"):
            if (device, model_name, anchor) in _FASTEST:
                info[f"speedup_vs_{anchor}"] = _FASTEST[(device, model_name, anchor)] / info["seconds"]
        assert info["max_abs_diff_vs_reference"] <= PARITY_TOLERANCE
    _FASTEST[(device, model_name, implementation)] = min(seconds)
    info["per_image_seconds"] = min(seconds) / case.num_images
    info.update(environment())


VARIANTS = {
    "batch_size=32": {"batch_size": 32},
    "batch_size=64": {"batch_size": 64},
    "batch_size=128": {"batch_size": 128},
    "batch_size=256": {"batch_size": 256},
    "batch_size=512": {"batch_size": 512},
    "channels_last=off": {"channels_last": False},
    "skip_zero_channels=off": {"skip_zero_channels": False},
    "dead_channels=1/2": {},
    "autocast=bf16": {"autocast": "bf16"},
    "top_k=C/4": {},
    "compile": {"compile": True},
}
EXACT_VARIANTS = [name for name in VARIANTS if name not in ("autocast=bf16", "top_k=C/4")]


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("model_name", MODEL_NAMES)
@pytest.mark.parametrize("device", DEVICES)
def test_scorecam_variants(benchmark, device, model_name, variant):
    case = load_dead_case(model_name, device) if variant == "dead_channels=1/2" else load_case(model_name, device)
    benchmark.group = f"scorecam variants {model_name} {device}"
    options = {"mode": "parity", **VARIANTS[variant]}  # compared with the parity reference
    if variant == "top_k=C/4":
        options["top_k"] = num_channels(case) // 4
    if variant == "compile":
        # the compiled graph is built on the first call and kept for the process: time that call apart
        start = time.perf_counter()
        score_cam(case.model, case.layer, case.images, case.targets, **options)
        benchmark.extra_info["first_call_seconds"] = time.perf_counter() - start

    info = _run_rtool(benchmark, case, model_name, **options)
    if variant == "compile":
        info["compile_seconds"] = benchmark.extra_info["first_call_seconds"] - info["seconds"]
    benchmark.extra_info.update(info)
    benchmark.extra_info["options"] = repr(options)
    # the baseline of the group: exactly what score_cam does when called without options
    benchmark.extra_info["is_default"] = variant.startswith("batch_size=") and info["batch_size"] == auto_batch_size(
        case.images)
    if variant in EXACT_VARIANTS:
        assert info["max_abs_diff_vs_reference"] <= PARITY_TOLERANCE
