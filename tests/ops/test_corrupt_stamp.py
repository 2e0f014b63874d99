import pytest
import torch

from rtool.ops import corrupt_stamp, operators_loaded
from rtool.ops.reference import corrupt_stamp_ref

from fixtures.corrupt_ops import CUDA, noncontiguous, rand, run_cuda_vs_cpu

pytestmark = pytest.mark.skipif(not operators_loaded(), reason="rtool._C is not built")


def random_stamps(batch, count, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    kind = torch.randint(0, 5, (batch, count), generator=g)
    r0 = torch.randint(-3, h + 3, (batch, count), generator=g)
    c0 = torch.randint(-3, w + 3, (batch, count), generator=g)
    hh = torch.randint(0, 6, (batch, count), generator=g)
    ww = torch.randint(0, 6, (batch, count), generator=g)
    sr = torch.randint(1, 3, (batch, count), generator=g)
    sc = torch.randint(1, 3, (batch, count), generator=g)
    fills = torch.rand((batch, count), generator=g, dtype=torch.float64)
    return torch.stack([kind, r0, c0, hh, ww, sr, sc], dim=-1), fills


def sample_inputs(device, requires_grad=False):
    samples = []
    for shape, count, seed in (((3, 3, 20, 24), 12, 0), ((1, 3, 17, 17), 1, 1), ((2, 1, 30, 19), 40, 2)):
        stamps, fills = random_stamps(shape[0], count, shape[2], shape[3], seed)
        samples.append(((rand(shape, seed, device=device), stamps.to(device), fills.to(device)), {}))
    stamps, fills = random_stamps(2, 5, 18, 22, 3)
    samples.append(((noncontiguous((2, 3, 18, 22), 3, device), stamps.to(device), fills.to(device)), {}))
    samples.append(((rand((2, 3, 16, 16), 4, torch.float64, device), stamps.to(device), fills.to(device)), {}))
    samples.append(((rand((0, 3, 16, 16), device=device), torch.zeros((0, 3, 7), dtype=torch.long, device=device),
                     torch.zeros((0, 3), dtype=torch.float64, device=device)), {}))
    return samples


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    before = args[0].clone()
    out = corrupt_stamp(*args, **kwargs)
    torch.testing.assert_close(out, corrupt_stamp_ref(*args), atol=0, rtol=0)
    assert torch.equal(args[0], before)


def test_opcheck():
    for args, kwargs in sample_inputs("cpu")[:2]:
        torch.library.opcheck(torch.ops.rtool.corrupt_stamp, args, kwargs)


def test_errors_name_the_argument():
    x = rand((2, 3, 16, 16))
    with pytest.raises(RuntimeError, match=r"rtool.corrupt_stamp: stamps must be \[B, S, 7\]"):
        corrupt_stamp(x, torch.zeros((2, 3, 6), dtype=torch.long), torch.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="rtool.corrupt_stamp: images must be 4-D"):
        corrupt_stamp(x[0], torch.zeros((2, 3, 7), dtype=torch.long), torch.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="not differentiable"):
        corrupt_stamp(x.requires_grad_(), torch.zeros((2, 3, 7), dtype=torch.long), torch.zeros((2, 3)))


@CUDA
def test_cuda_matches_cpu():
    run_cuda_vs_cpu(corrupt_stamp, sample_inputs("cpu"), sample_inputs("cuda"), atol=0)
