"""Where `rtool noc mce` spends its time: corrupting the batch vs the model's forward pass (issue #8 target:
corruption < 5 % of the time), for resnet18 (random weights) on shapes-size (64²) and 224² batches.

Each round runs the evaluation step of rtool.noc.evaluate for the clean pass and every noc8 corruption
(draw the per-image parameters, corrupt on the device, normalise, forward) and splits the time with
timers around the two halves; `extra_info` records the split, per corruption too:
    pytest bench/test_noc_mce_share.py --benchmark-json=mce-share.json
RTOOL_BENCH_MCE_BATCH=4 makes a smoke run (the figures in bench/README.md use the default, 64).
"""
import os
import time

import pytest
import torch

from rtool.models import build_model
from rtool.noc import PRESETS, corrupt

BATCH = int(os.environ.get("RTOOL_BENCH_MCE_BATCH", "64"))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [64, 224])
def test_mce_time_share(benchmark, device, size):
    benchmark.group = f"noc mce share resnet18 {BATCH}x{size} {device}"
    torch.manual_seed(0)
    model = build_model("resnet18", None).to(device).eval()
    images = torch.rand((BATCH, 3, size, size), generator=torch.Generator().manual_seed(0)).to(device)
    mean, std = MEAN.to(device), STD.to(device)
    names = PRESETS["noc8"]
    times = {"forward": 0.0, **{name: 0.0 for name in names}}

    def step():
        for name in (None, *names):
            _sync(device)
            start = time.perf_counter()
            x = images if name is None else corrupt(images, name, seed=0, indices=range(BATCH))
            _sync(device)
            middle = time.perf_counter()
            with torch.inference_mode():
                model((x - mean) / std)
            _sync(device)
            if name is not None:
                times[name] += middle - start
            times["forward"] += time.perf_counter() - middle

    rounds = 3
    benchmark.pedantic(step, rounds=rounds, warmup_rounds=1)
    # The warm-up round is counted in `times` too; the shares are ratios, so that does not matter.
    corruption = sum(times[n] for n in names)
    benchmark.extra_info.update({
        "corruption_share": corruption / (corruption + times["forward"]),
        "forward_s_per_pass": times["forward"] / ((rounds + 1) * (1 + len(names))),
        "corrupt_s_per_pass": {n: times[n] / (rounds + 1) for n in names},
        "share_per_corruption": {n: times[n] / (times[n] + times["forward"] / (1 + len(names))) for n in names},
        "batch": BATCH, "size": size, "threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0],
    })
