import pytest
import torch

from rtool.ops import corrupt_noise, operators_loaded
from rtool.ops.reference import corrupt_noise_ref

from fixtures.corrupt_ops import CUDA, noncontiguous, rand, run_cuda_vs_cpu

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def sample_inputs(device, requires_grad=False):
    samples = []
    keys = torch.tensor([0, 12345, 2**62 - 1], device=device)
    for mode, amounts in (("gaussian", [0.05, 0.18, 0.1]), ("salt_pepper", [0.0015, 0.016, 0.3])):
        a = torch.tensor(amounts, dtype=torch.float64, device=device)
        samples.append(((rand((3, 3, 20, 23), device=device), keys, a, mode), {}))
        samples.append(((noncontiguous((3, 3, 16, 18), 1, device), keys, a, mode), {}))
        samples.append(((rand((1, 1, 1, 1), 2, torch.float64, device), keys[:1], a[:1], mode), {}))
        samples.append(((rand((0, 3, 4, 4), device=device), keys[:0], a[:0], mode), {}))
    return samples


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    torch.testing.assert_close(corrupt_noise(*args, **kwargs), corrupt_noise_ref(*args), atol=1e-6, rtol=0)


def test_noise_statistics():
    x = torch.full((1, 3, 64, 64), 0.5)
    amount = torch.tensor([0.1], dtype=torch.float64)
    sp = corrupt_noise(x, torch.tensor([7]), amount, "salt_pepper")
    assert abs(float((sp == 0).float().mean()) - 0.1) < 0.02 and abs(float((sp == 1).float().mean()) - 0.1) < 0.02
    g = corrupt_noise(torch.zeros((1, 3, 64, 64)), torch.tensor([7]), amount, "gaussian")
    assert abs(float(g.mean()) - 0.1 * (2 / torch.pi) ** 0.5) < 0.005  # E|N(0, s^2)| = s sqrt(2/pi)


def test_opcheck():
    for args, kwargs in sample_inputs("cpu")[:1] + sample_inputs("cpu")[4:5]:
        torch.library.opcheck(torch.ops.rtool.corrupt_noise, args, kwargs)


def test_errors_name_the_argument():
    x = rand((2, 3, 8, 8))
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_noise: keys must be 1-D \[B\] with B=2"):
        corrupt_noise(x, torch.zeros(3, dtype=torch.long), torch.zeros(2), "gaussian")
    with pytest.raises(RuntimeError, match="rtool.corrupt_noise: mode must be 'gaussian' or 'salt_pepper', got 'fog'"):
        corrupt_noise(x, torch.zeros(2, dtype=torch.long), torch.zeros(2), "fog")
    with pytest.raises(RuntimeError, match="rtool.corrupt_noise: images must be float32 or float64"):
        corrupt_noise(x.half(), torch.zeros(2, dtype=torch.long), torch.zeros(2), "gaussian")


@CUDA
def test_cuda_matches_cpu():
    run_cuda_vs_cpu(corrupt_noise, sample_inputs("cpu"), sample_inputs("cuda"), atol=1e-6)
