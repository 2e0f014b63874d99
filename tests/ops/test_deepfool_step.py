"""rtool.ops.deepfool_step vs its plain-PyTorch reference, the LTS4 choice rule, and the dispatcher contract."""
import pytest
import torch

import rtool
from rtool.ops import deepfool_step
from rtool.ops.reference import deepfool_step_ref


def sample_inputs(device, requires_grad=False):
    """(args, kwargs) cases for the reference test and opcheck: random, K=1, D=1, zero gradient rows, empty
    batch, non-contiguous, float64."""
    g = torch.Generator().manual_seed(7)

    def randn(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=g, dtype=dtype).to(device).requires_grad_(requires_grad)

    cases = [
        ((randn(3, 9), randn(3, 9, 784)), {}),                        # MNIST-like: 9 candidates, 784 dims
        ((randn(3, 1), randn(3, 1, 17)), {}),                         # K = 1
        ((randn(4, 6), randn(4, 6, 1)), {"step_eps": 0.0}),           # D = 1, the paper's step
        ((randn(0, 9), randn(0, 9, 12)), {}),                         # empty batch
        ((randn(2, 4, dtype=torch.float64), randn(2, 4, 33, dtype=torch.float64)), {"step_eps": 1e-3}),
    ]
    # Zero gradient rows: sample 0 loses its best candidate, sample 1 has no usable candidate at all.
    f = torch.randn(3, 5, generator=g)
    w = torch.randn(3, 5, 20, generator=g)
    w[0, (f[0].abs() / w[0].norm(dim=1)).argmin()] = 0
    w[1] = 0
    w[2, 1:] = 0
    cases.append(((f.to(device).requires_grad_(requires_grad), w.to(device).requires_grad_(requires_grad)), {}))
    # Non-contiguous: transposed logit differences, strided gradient differences.
    f_nc = torch.randn(6, 4, generator=g).t().to(device)                # [4, 6]
    w_nc = torch.randn(4, 12, 30, generator=g)[:, ::2].to(device)       # [4, 6, 30], strided
    cases.append(((f_nc.requires_grad_(requires_grad), w_nc.requires_grad_(requires_grad)), {}))
    return cases


def check_against_reference(args, kwargs, atol=1e-6):
    step, chosen, distance = deepfool_step(*args, **kwargs)
    expected_step, expected_chosen, expected_distance = deepfool_step_ref(*args, **kwargs)
    assert step.dtype == args[1].dtype and distance.dtype == args[1].dtype and chosen.dtype == torch.int64
    torch.testing.assert_close(chosen, expected_chosen)
    torch.testing.assert_close(distance, expected_distance, atol=atol, rtol=1e-5)
    torch.testing.assert_close(step, expected_step, atol=atol, rtol=1e-5)


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_matches_reference(index):
    args, kwargs = sample_inputs("cpu")[index]
    check_against_reference(args, kwargs)


@pytest.mark.parametrize("index", range(len(sample_inputs("cpu"))))
def test_opcheck(index):
    args, kwargs = sample_inputs("cpu")[index]
    torch.library.opcheck(torch.ops.rtool.deepfool_step.default, args, kwargs)


def test_lts4_rule_by_hand():
    # Candidate 0: ratio 3/5; candidate 1: ratio 1/2 (smallest, chosen); candidate 2: ratio 1/2 too (later, loses).
    f = torch.tensor([[-3.0, -1.0, 2.0]], dtype=torch.float64)
    w = torch.zeros(1, 3, 2, dtype=torch.float64)
    w[0, 0] = torch.tensor([3.0, 4.0])
    w[0, 1] = torch.tensor([0.0, 2.0])
    w[0, 2] = torch.tensor([4.0, 0.0])
    step, chosen, distance = deepfool_step(f, w)
    assert chosen.tolist() == [1]
    assert distance.item() == pytest.approx(0.5)
    # (|f| / ||w|| + 1e-4) * w / ||w|| = (0.5 + 1e-4) * [0, 1]
    torch.testing.assert_close(step, torch.tensor([[0.0, 0.5 + 1e-4]], dtype=torch.float64))


def test_zero_gradients_are_never_chosen():
    f = torch.tensor([[0.0, 5.0], [1.0, 1.0], [0.0, 0.0]])
    w = torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 2.0]]])
    step, chosen, distance = deepfool_step(f, w)
    assert chosen.tolist() == [1, -1, 1]
    assert distance[0].item() == pytest.approx(1.0) and distance[1].item() == float("inf")
    assert distance[2].item() == 0.0  # a zero logit difference with a usable gradient: step of 1e-4 only
    assert torch.all(step[1] == 0)
    torch.testing.assert_close(step[2], torch.tensor([0.0, 1e-4]))


def test_no_candidates():
    step, chosen, distance = deepfool_step(torch.zeros(2, 0), torch.zeros(2, 0, 5))
    assert step.shape == (2, 5) and torch.all(step == 0)
    assert chosen.tolist() == [-1, -1] and torch.all(distance.isinf())


def test_rows_are_independent():
    args, _ = sample_inputs("cpu")[0]
    f, w = args
    full = deepfool_step(f, w)
    single = deepfool_step(f[1:2], w[1:2])
    for a, b in zip(full, single):
        torch.testing.assert_close(a[1:2], b)


def test_outputs_carry_no_gradient():
    f = torch.randn(2, 3, requires_grad=True)
    w = torch.randn(2, 3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="rtool.deepfool_step is not differentiable"):
        deepfool_step(f, w)[0].sum().backward()


@pytest.mark.parametrize(
    "f, w, kwargs, message",
    [
        (torch.randn(2, 3, 1), torch.randn(2, 3, 4), {}, "logit_diff must be 2-D"),
        (torch.randn(2, 3), torch.randn(2, 12), {}, "grad_diff must be 3-D"),
        (torch.randn(2, 3), torch.randn(2, 4, 5), {},
         "grad_diff has shape \\[2, 4, 5\\] but logit_diff has shape \\[2, 3\\]"),
        (torch.randn(2, 3), torch.randn(3, 3, 5), {}, "grad_diff has shape"),
        (torch.randn(2, 3).half(), torch.randn(2, 3, 5).half(), {}, "logit_diff must be float32 or float64, got Half"),
        (torch.randn(2, 3), torch.randn(2, 3, 5).double(), {}, "grad_diff must have logit_diff's dtype"),
        (torch.randn(2, 3), torch.randn(2, 3, 5), {"step_eps": -1.0}, "step_eps must be finite and >= 0, got -1"),
    ],
)
def test_bad_input_names_the_argument(f, w, kwargs, message):
    with pytest.raises(RuntimeError, match="rtool.deepfool_step: " + message) as info:
        deepfool_step(f, w, **kwargs)
    assert "\n" not in str(info.value).split("\nException raised from")[0]


def test_torch_compile_uses_fake_kernel():
    (f, w), _ = sample_inputs("cpu")[0]

    def moved(f, w):
        step, chosen, distance = torch.ops.rtool.deepfool_step(f, w, 1e-4)
        return step.sum(dim=1) + distance, chosen

    compiled = torch.compile(moved, backend="eager", fullgraph=True)
    for got, want in zip(compiled(f, w), moved(f, w)):
        torch.testing.assert_close(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_reference():
    assert rtool.ops.cuda_compiled(), "a GPU is present but rtool was built without CUDA kernels"
    for args, kwargs in sample_inputs("cuda"):
        check_against_reference(args, kwargs)
        torch.library.opcheck(torch.ops.rtool.deepfool_step.default, args, kwargs)
    # CPU and CUDA agree on the chosen candidate and the step.
    (f, w), _ = sample_inputs("cpu")[0]
    cpu = deepfool_step(f, w)
    gpu = deepfool_step(f.cuda(), w.cuda())
    torch.testing.assert_close(gpu[1].cpu(), cpu[1])
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=1e-6, rtol=1e-5)
