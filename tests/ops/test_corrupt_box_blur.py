import pytest
import torch

from rtool.ops import corrupt_box_blur, operators_loaded
from rtool.ops.reference import corrupt_box_blur_ref

from fixtures.corrupt_ops import CUDA, noncontiguous, rand, run_cuda_vs_cpu

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def sample_inputs(device, requires_grad=False):
    w = torch.tensor([0.4, 0.95, 1.0], dtype=torch.float64, device=device)
    return [
        ((rand((3, 3, 20, 23), device=device), w, 5), {}),
        ((noncontiguous((3, 3, 16, 18), 1, device), w, 2), {}),
        ((rand((1, 2, 1, 5), 2, torch.float64, device), w[:1], 5), {}),
        ((rand((3, 3, 9, 9), 3, device=device), w, 0), {}),
        ((rand((0, 3, 4, 4), device=device), w[:0], 5), {}),
    ]


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    torch.testing.assert_close(corrupt_box_blur(*args, **kwargs), corrupt_box_blur_ref(*args), atol=1e-5, rtol=0)


def test_borders_darken():
    out = corrupt_box_blur(torch.ones((1, 3, 16, 16)), torch.tensor([1.0]), 5)
    assert out[0, 0, 8, 8] == pytest.approx(1.0, abs=1e-6) and out[0, 0, 0, 0] < 0.5


def test_opcheck():
    for args, kwargs in sample_inputs("cpu")[:2]:
        torch.library.opcheck(torch.ops.rtool.corrupt_box_blur, args, kwargs)


def test_errors_name_the_argument():
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_box_blur: weights must be 1-D \[B\] with B=2"):
        corrupt_box_blur(rand((2, 3, 8, 8)), torch.zeros(1), 5)
    with pytest.raises(RuntimeError, match="rtool.corrupt_box_blur: passes must be >= 0, got -1"):
        corrupt_box_blur(rand((2, 3, 8, 8)), torch.zeros(2), -1)


@CUDA
def test_cuda_matches_cpu():
    run_cuda_vs_cpu(corrupt_box_blur, sample_inputs("cpu"), sample_inputs("cuda"), atol=1e-5)
