"""The 23 corruptions on a batch of 64 images at 224x224: rtool's batched kernels vs a plain copy of the
batch (the memory floor), the per-image plain references (rtool.ops.reference, or the tensor ops one
image at a time), the authors'-style per-image PIL/tensor path (bench/_noc_anchor.py, the anchor), and, for the
corruptions it has a counterpart of, the `imagecorruptions` package (ImageNet-C's code, per uint8 HWC image,
severity 3; its operations differ from NOC's, so only the time compares).

One group per corruption, so pytest-benchmark prints them side by side and the ratios come from one run:
    pytest bench/test_bench_corrupt.py --benchmark-json=corrupt.json
"""
import pytest
import torch

from rtool.noc import CORRUPTIONS, affine_matrices, apply_params, corrupt, draw_params, stamp_arguments
from rtool.ops import reference as ref

from _noc_anchor import anchor

BATCH, SIZE = 64, 224
# NOC corruption -> its nearest imagecorruptions counterpart
IMAGECORRUPTIONS = {"gaussian": "gaussian_noise", "salt_pepper": "impulse_noise", "blur": "defocus_blur",
                    "brightness": "brightness", "contrast": "contrast", "elastic": "elastic_transform",
                    "pixelate": "pixelate"}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
STAMPS = {"artifacts", "vertical_artifacts", "rhombus", "rain", "circle", "obstruction", "border"}


def reference(name, x, p):
    """The per-image plain reference of one batch (pil_exact)."""
    if name in STAMPS:
        stamps, fills = stamp_arguments(p)
        return ref.corrupt_stamp_ref(x, stamps, fills)
    if name in ("gaussian", "salt_pepper"):
        return ref.corrupt_noise_ref(x, p["key"], p["amount"], name)
    if name == "blur":
        return ref.corrupt_box_blur_ref(x, p["weight"], 5)
    if name == "hue":
        return ref.corrupt_hue_ref(x, p["shift"], True)
    if name in ("rotation", "translation", "shear"):
        return ref.corrupt_affine_ref(x, affine_matrices(p), True)
    if name == "pixelate":
        return ref.corrupt_resample_ref(x, p["block"].view(-1, 1), "pixelate")
    if name == "thumbnail_resize":
        return ref.corrupt_resample_ref(x, torch.stack([p["height"], p["width"]], 1), "thumbnail", True)
    if name == "elastic":
        return ref.corrupt_resample_ref(x, torch.stack([p["axis"], p["cut"]], 1), "crop_stretch", True)
    # tensor-op corruptions: the same ops, one image at a time
    return torch.cat([apply_params(x[i : i + 1], p.select([i])) for i in range(len(p))])


def run(benchmark, fn, device, rounds):
    def call():
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    benchmark.pedantic(call, rounds=rounds, warmup_rounds=1)


@pytest.fixture(scope="module")
def batches():
    g = torch.Generator().manual_seed(0)
    x = torch.rand((BATCH, 3, SIZE, SIZE), generator=g)
    return {d: x.to(d) for d in DEVICES}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("implementation", ["copy", "rtool", "rtool-apply", "rtool-fast", "reference", "anchor",
                                            "imagecorruptions"])
def test_corrupt(benchmark, batches, name, device, implementation):
    x = batches[device]
    benchmark.group = f"corrupt {name} {BATCH}x{SIZE} {device}"
    params = draw_params(name, (SIZE, SIZE), BATCH, seed=0)
    if implementation == "copy":
        run(benchmark, lambda: x.clone(), device, 5)
    elif implementation == "rtool":
        run(benchmark, lambda: corrupt(x, name, seed=0), device, 5)
    elif implementation == "rtool-apply":
        on_device = params.to(device)
        run(benchmark, lambda: apply_params(x, on_device, "pil_exact"), device, 5)
    elif implementation == "rtool-fast":
        run(benchmark, lambda: corrupt(x, name, seed=0, mode="fast"), device, 5)
    elif device != "cpu":
        pytest.skip("the per-image paths are CPU code")
    elif implementation == "reference":
        run(benchmark, lambda: reference(name, x, params), device, 1)
    elif implementation == "imagecorruptions":
        if name not in IMAGECORRUPTIONS:
            pytest.skip(f"imagecorruptions has no counterpart of {name}")
        corrupt_hwc = _imagecorruptions()
        images = [(x[i].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy() for i in range(BATCH)]
        run(benchmark, lambda: [corrupt_hwc(image, corruption_name=IMAGECORRUPTIONS[name], severity=3)
                                for image in images], device, 1)
    else:
        records = params.as_records()
        run(benchmark, lambda: torch.stack([anchor(name, x[i], records[i]) for i in range(BATCH)]), device, 1)


def _imagecorruptions():
    """imagecorruptions.corrupt; its 1.1.2 imports pkg_resources, which current setuptools no longer ships."""
    import importlib.resources
    import sys
    import types

    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")
            shim.resource_filename = lambda package, path: str(importlib.resources.files(package) / path)
            sys.modules["pkg_resources"] = shim
    corruptions = pytest.importorskip("imagecorruptions", reason="pip install -e '.[bench]' (imagecorruptions)")
    return corruptions.corrupt
