import pytest
import torch

from rtool.noc import affine_matrix
from rtool.ops import corrupt_affine, operators_loaded
from rtool.ops.reference import corrupt_affine_ref

from fixtures.corrupt_ops import CUDA, noncontiguous, rand, run_cuda_vs_cpu

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def matrices(h, w, device):
    c = (w * 0.5, h * 0.5)
    rows = [affine_matrix(33.0, (0, 0), (0, 0), c), affine_matrix(0.0, (-7, 4), (0, 0), c),
            affine_matrix(0.0, (0, 0), (-21.0, 0), c), affine_matrix(-50.0, (0, 0), (0, 0), c)]
    return torch.tensor(rows, dtype=torch.float64, device=device)


def sample_inputs(device, requires_grad=False):
    samples = []
    for quantize in (True, False):
        samples.append(((rand((4, 3, 20, 23), device=device), matrices(20, 23, device), quantize), {}))
        samples.append(((noncontiguous((4, 3, 16, 18), 1, device), matrices(16, 18, device), quantize), {}))
        samples.append(((rand((1, 2, 1, 3), 2, torch.float64, device), matrices(1, 3, device)[:1], quantize), {}))
        samples.append(((rand((0, 3, 4, 4), device=device), matrices(4, 4, device)[:0], quantize), {}))
    return samples


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    torch.testing.assert_close(corrupt_affine(*args, **kwargs), corrupt_affine_ref(*args), atol=1e-7, rtol=0)


def test_identity_and_black_fill():
    x = rand((1, 3, 16, 16))
    eye = torch.tensor([[1.0, 0, 0, 0, 1.0, 0]], dtype=torch.float64)
    assert torch.equal(corrupt_affine(x, eye, False), x)
    shifted = corrupt_affine(x, torch.tensor([[1.0, 0, 5.0, 0, 1.0, 0]], dtype=torch.float64), False)
    assert (shifted[..., -5:] == 0).all() and torch.equal(shifted[..., :-5], x[..., 5:])


def test_opcheck():
    for args, kwargs in sample_inputs("cpu")[:2]:
        torch.library.opcheck(torch.ops.rtool.corrupt_affine, args, kwargs)


def test_errors_name_the_argument():
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_affine: matrices must be \[B, 6\] with B=2"):
        corrupt_affine(rand((2, 3, 8, 8)), torch.zeros(2, 4, dtype=torch.float64), False)


@CUDA
def test_cuda_matches_cpu():
    run_cuda_vs_cpu(corrupt_affine, sample_inputs("cpu"), sample_inputs("cuda"), atol=0)
