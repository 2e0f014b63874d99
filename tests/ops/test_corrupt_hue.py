import pytest
import torch

from rtool.ops import corrupt_hue, operators_loaded
from rtool.ops.reference import corrupt_hue_ref

from fixtures.corrupt_ops import CUDA, noncontiguous, rand, run_cuda_vs_cpu

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def every_8bit_colour():
    """All 2^24 RGB colours would be slow: a 3-D lattice of 64 levels each (262k pixels) plus grays."""
    levels = torch.arange(0, 256, 4, dtype=torch.float32) / 255
    r, g, b = torch.meshgrid(levels, levels, levels, indexing="ij")
    return torch.stack([r, g, b]).reshape(1, 3, 512, 512)


def sample_inputs(device, requires_grad=False):
    shifts = torch.tensor([0.05, -0.5, -0.23, 0.5], dtype=torch.float64, device=device)
    samples = []
    for pil in (True, False):
        samples.append(((rand((4, 3, 20, 23), device=device), shifts, pil), {}))
        samples.append(((noncontiguous((4, 3, 16, 18), 1, device), shifts, pil), {}))
        samples.append(((rand((1, 3, 1, 1), 2, torch.float64, device), shifts[:1], pil), {}))
        samples.append(((rand((0, 3, 4, 4), device=device), shifts[:0], pil), {}))
    return samples


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    torch.testing.assert_close(corrupt_hue(*args, **kwargs), corrupt_hue_ref(*args), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shift", [0.3, -0.41])
def test_pil_exact_on_a_colour_lattice(shift):
    x = every_8bit_colour()
    s = torch.tensor([shift], dtype=torch.float64)
    torch.testing.assert_close(corrupt_hue(x, s, True), corrupt_hue_ref(x, s, True), atol=0, rtol=0)


def test_opcheck():
    for args, kwargs in sample_inputs("cpu")[:1] + sample_inputs("cpu")[4:5]:
        torch.library.opcheck(torch.ops.rtool.corrupt_hue, args, kwargs)


def test_errors_name_the_argument():
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_hue: images must have 3 channels \(RGB\)"):
        corrupt_hue(rand((2, 1, 8, 8)), torch.zeros(2), True)
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_hue: shifts must be 1-D \[B\] with B=2"):
        corrupt_hue(rand((2, 3, 8, 8)), torch.zeros(2, 1), True)


@CUDA
def test_cuda_matches_cpu():
    run_cuda_vs_cpu(corrupt_hue, sample_inputs("cpu"), sample_inputs("cuda"), atol=1e-6)
