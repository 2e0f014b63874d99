"""rtool.ops.scorecam_masks vs its plain-PyTorch reference vs pytorch-grad-cam's ScoreCAM mask step.

One group per geometry, so pytest-benchmark prints the three side by side and the ratio is read off one run.
The anchor is pytorch-grad-cam's `ScoreCAM.get_cam_weights` (UpsamplingBilinear2d, min-max, broadcast multiply)
driven with a model that costs almost nothing, so what is timed is its mask building.
"""
import pytest
import torch

from rtool.ops import scorecam_masks
from rtool.ops.reference import scorecam_masks_ref

GEOMETRIES = {
    "resnet18": (512, 7, 7, 224),
    "resnet50": (2048, 7, 7, 224),
}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def inputs(name, device):
    channels, h, w, size = GEOMETRIES[name]
    images = torch.randn(1, 3, size, size, device=device)
    activations = torch.randn(1, channels, h, w, device=device)
    return images, activations


def run(benchmark, fn, device, rounds):
    def call():
        out = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    benchmark.pedantic(call, rounds=rounds, warmup_rounds=1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("implementation", ["rtool", "reference", "pytorch-grad-cam"])
def test_scorecam_masks(benchmark, geometry, device, implementation):
    images, activations = inputs(geometry, device)
    benchmark.group = f"scorecam_masks {geometry} {device}"
    rounds = 5 if geometry == "resnet18" else 3
    if implementation == "rtool":
        run(benchmark, lambda: scorecam_masks(images, activations, "minmax"), device, rounds)
    elif implementation == "reference":
        run(benchmark, lambda: scorecam_masks_ref(images, activations, "minmax"), device, rounds)
    else:
        pytest.importorskip("pytorch_grad_cam", reason="install the bench extra: pip install -e '.[bench]'")
        from pytorch_grad_cam import ScoreCAM

        model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 2)).to(device)
        cam = ScoreCAM(model, target_layers=[model[0]])
        cam.batch_size = 512  # few model calls: the timed work is the mask building
        acts = activations.cpu().numpy()
        targets = [lambda out: out[0]]
        run(benchmark, lambda: cam.get_cam_weights(images, None, targets, acts, None), device, rounds)
