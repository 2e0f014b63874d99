"""Shared checks of the corrupt_* op tests: reference agreement, opcheck, CUDA vs CPU."""
import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def rand(shape, seed=0, dtype=torch.float32, device="cpu"):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


def noncontiguous(shape, seed=0, device="cpu"):
    """A [B, C, H, W] tensor that is a transposed view (not contiguous)."""
    b, c, h, w = shape
    return rand((b, c, w, h), seed, device=device).transpose(2, 3)


def run_cuda_vs_cpu(op, samples_cpu, samples_cuda, atol=1e-6):
    for (args_cpu, kw_cpu), (args_gpu, kw_gpu) in zip(samples_cpu, samples_cuda):
        torch.testing.assert_close(op(*args_gpu, **kw_gpu).cpu(), op(*args_cpu, **kw_cpu), atol=atol, rtol=0)
