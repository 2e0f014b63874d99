"""Layer conductance on resnet18 layer4, batch 8 at 224, n_steps 10 and 50: rtool's integrated form and its exact
closed form vs Captum's `LayerConductance` (the same `riemann_trapezoid` path), in one run, one group per n_steps.

Peak memory: every entry is also run once in a fresh subprocess, which reports the growth of its peak resident
set size over the call (VmHWM after the call over VmRSS before it, the peak reset through /proc/self/clear_refs;
`ru_maxrss` would carry the parent's peak over fork + exec) or, on CUDA, `torch.cuda.max_memory_allocated` over the call; recorded in
`extra_info["peak_mib"]`. The values are checked against Captum's (spatial mean of its per-neuron output).
`rtool-integrated` runs with the default `max_rows=256` (all 11 x 8 rows of n_steps 10 in one pass, as Captum);
`rtool-integrated-rows16` bounds a pass to 16 rows, which is what bounds the memory.

Smoke run with tiny sizes: `RTOOL_BENCH_TINY=1 python -m pytest bench/test_detect_conductance.py`.
"""
import json
import os
import subprocess
import sys

import pytest
import torch

from rtool.detect import ConductanceSettings, layer_conductance

TINY = os.environ.get("RTOOL_BENCH_TINY") == "1"
BATCH, SIZE = (2, 64) if TINY else (8, 224)
STEPS = (2, 3) if TINY else (10, 50)
# rtool-integrated-rows16: at most 16 rows (2 path points of the batch) per pass, the bounded-memory setting
IMPLEMENTATIONS = ("rtool-integrated", "rtool-integrated-rows16", "rtool-closed-form", "captum")
VALUES: dict[tuple[str, int], torch.Tensor] = {}


def setup(device="cpu"):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    model = resnet18(weights=None).eval().to(device)
    images = torch.randn(BATCH, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        targets = model(images).argmax(1)
    return model, images, targets


def compute(implementation, model, images, targets, n_steps):
    if implementation == "captum":
        from captum.attr import LayerConductance

        attr = LayerConductance(model, model.layer4).attribute(images, baselines=0.0, target=targets,
                                                               n_steps=n_steps, method="riemann_trapezoid")
        return attr.detach().flatten(2).mean(2)
    method = "closed_form" if implementation == "rtool-closed-form" else "riemann_trapezoid"
    max_rows = 16 if implementation.endswith("rows16") else 256
    settings = ConductanceSettings("layer4", n_steps=n_steps, method=method, max_rows=max_rows)
    return layer_conductance(model, images, settings, targets=targets).values


def peak_mib(implementation, n_steps, device="cpu"):
    """Peak memory growth of one call in a fresh process."""
    code = ("import sys, json; sys.path.insert(0, %r); import test_detect_conductance as b; "
            "print(json.dumps(b._measure(%r, %d, %r)))" % (os.path.dirname(__file__), implementation, n_steps,
                                                           device))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=1800,
                         env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(implementation, n_steps, device):
    model, images, targets = setup(device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        compute(implementation, model, images, targets, n_steps)
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - start) / 2**20
    # ru_maxrss is inherited through fork + exec (a child of a large pytest process starts at its parent's peak),
    # so the peak is reset and read from /proc instead: VmHWM after "5" > clear_refs, growth over VmRSS.
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_kib("VmRSS")
    compute(implementation, model, images, targets, n_steps)
    return (_status_kib("VmHWM") - before) / 1024


def _status_kib(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


@pytest.fixture(scope="module")
def case():
    return setup()


@pytest.mark.parametrize("n_steps", STEPS)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_conductance(benchmark, case, implementation, n_steps):
    if implementation == "captum":
        pytest.importorskip("captum", reason="install the test extra: pip install -e '.[test]'")
    model, images, targets = case
    benchmark.group = f"conductance resnet18 layer4 {BATCH}x3x{SIZE}x{SIZE} n_steps={n_steps}"
    values = benchmark.pedantic(lambda: compute(implementation, model, images, targets, n_steps), rounds=1 if TINY
                                else 3, warmup_rounds=0)
    VALUES[(implementation, n_steps)] = values
    benchmark.extra_info.update(peak_mib=peak_mib(implementation, n_steps), threads=torch.get_num_threads(),
                                loadavg=os.getloadavg())
    if implementation != "rtool-integrated" and ("rtool-integrated", n_steps) in VALUES:
        # the trapezoid path telescopes on a GAP + Linear head: every form gives the same values
        torch.testing.assert_close(values, VALUES[("rtool-integrated", n_steps)], rtol=1e-3, atol=1e-5)
