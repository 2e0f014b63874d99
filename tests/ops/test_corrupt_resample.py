import pytest
import torch

from rtool.ops import corrupt_resample, operators_loaded
from rtool.ops.reference import corrupt_resample_ref

from fixtures.corrupt_ops import CUDA, noncontiguous, rand, run_cuda_vs_cpu

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def sample_inputs(device, requires_grad=False):
    t = lambda rows: torch.tensor(rows, dtype=torch.long, device=device)  # noqa: E731
    samples = []
    samples.append(((rand((3, 3, 22, 25), device=device), t([[2], [3], [4]]), "pixelate", False), {}))
    samples.append(((noncontiguous((3, 3, 16, 19), 1, device), t([[3], [1], [16]]), "pixelate", False), {}))
    for quantize in (True, False):
        samples.append(((rand((3, 3, 22, 25), 2, device=device), t([[20, 7], [6, 25], [10, 11]]), "thumbnail",
                         quantize), {}))
        samples.append(((noncontiguous((2, 3, 17, 16), 3, device), t([[5, 4], [17, 16]]), "thumbnail", quantize), {}))
        samples.append(((rand((3, 3, 22, 25), 4, device=device), t([[0, 10], [1, 12], [0, 0]]), "crop_stretch",
                         quantize), {}))
        if not quantize:  # the 8-bit (PIL) path is defined for RGB images only
            samples.append(((rand((1, 1, 3, 2), 5, torch.float64, device), t([[1, 1]]), "crop_stretch", quantize), {}))
        samples.append(((rand((0, 3, 4, 4), device=device), t([[0, 0]])[:0], "crop_stretch", quantize), {}))
    return samples


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    atol = 0 if args[3] else 1e-5
    torch.testing.assert_close(corrupt_resample(*args, **kwargs), corrupt_resample_ref(*args), atol=atol, rtol=0)


def test_opcheck():
    samples = sample_inputs("cpu")
    for args, kwargs in (samples[0], samples[2]):
        torch.library.opcheck(torch.ops.rtool.corrupt_resample, args, kwargs)


def test_errors_name_the_argument():
    x = rand((2, 3, 8, 8))
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_resample: params for mode 'thumbnail' must be \[B, 2\]"):
        corrupt_resample(x, torch.ones((2, 1), dtype=torch.long), "thumbnail", False)
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_resample: pixelate blocks must be in \[1, 8\], got 9"):
        corrupt_resample(x, torch.full((2, 1), 9), "pixelate", False)
    with pytest.raises(RuntimeError, match="rtool.corrupt_resample: mode must be 'pixelate'"):
        corrupt_resample(x, torch.ones((2, 1), dtype=torch.long), "zoom", False)


@CUDA
def test_cuda_matches_cpu():
    run_cuda_vs_cpu(corrupt_resample, sample_inputs("cpu"), sample_inputs("cuda"), atol=1e-6)
