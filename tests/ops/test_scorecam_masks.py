"""rtool.ops.scorecam_masks vs its plain-PyTorch reference, plus the dispatcher contract."""
import pytest
import torch

import rtool
from rtool.ops import scorecam_masks
from rtool.ops.reference import scorecam_masks_ref

MODES = ["parity", "minmax"]


def sample_inputs(device="cpu", requires_grad=False) -> list[tuple[tuple, dict]]:
    """(args, kwargs) of torch.ops.rtool.scorecam_masks for the reference test, opcheck and the autograd test:
    odd sizes, resnet-like and constant maps, channel subsets and explicit pairs, non-contiguous and
    channels_last inputs, an empty batch and an empty channel list, in both modes."""
    gen = torch.Generator().manual_seed(99)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device).requires_grad_(requires_grad)

    def leaf(tensor):
        return tensor.detach().requires_grad_(requires_grad)

    cases = []
    for mode in MODES:
        cases += [
            ((rand(2, 3, 12, 10), rand(2, 4, 3, 3), mode, None, 1e-8), {}),
            ((rand(2, 3, 37, 41), rand(2, 5, 3, 4), mode, None, 1e-8), {}),
            ((rand(3, 3, 16, 16), rand(3, 1, 1, 1), mode, None, 1e-8), {}),
            ((rand(2, 3, 12, 10), rand(2, 4, 3, 3), mode, torch.tensor([[1, 2], [0, 3]], device=device), 1e-8), {}),
            ((rand(3, 3, 11, 13), rand(3, 6, 4, 4), mode, torch.tensor([5, 0, 3], device=device), 1e-8), {}),
            ((leaf(torch.randn(2, 3, 30, 26, generator=gen).to(device).transpose(2, 3)),
              leaf(torch.randn(2, 4, 6, 5, generator=gen).to(device)[:, ::2]), mode, None, 1e-8), {}),
            ((leaf(torch.randn(2, 3, 12, 10, generator=gen).to(device).contiguous(memory_format=torch.channels_last)),
              rand(2, 4, 3, 3), mode, None, 1e-8), {}),
            ((rand(0, 3, 8, 8), rand(0, 4, 2, 2), mode, None, 1e-8), {}),
            ((rand(2, 3, 8, 8), rand(2, 4, 2, 2), mode, torch.empty(0, dtype=torch.long, device=device), 1e-8), {}),
        ]
    return cases


@pytest.mark.parametrize("index", range(len(sample_inputs())))
def test_samples_match_reference(index):
    args, kwargs = sample_inputs()[index]
    masked, ranges = torch.ops.rtool.scorecam_masks(*args, **kwargs)
    expected_masked, expected_ranges = scorecam_masks_ref(*args, **kwargs)
    torch.testing.assert_close(ranges, expected_ranges, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(masked, expected_masked, atol=1e-5, rtol=1e-5)


def test_not_differentiable_says_so():
    args, kwargs = sample_inputs(requires_grad=True)[0]
    masked, _ = torch.ops.rtool.scorecam_masks(*args, **kwargs)
    with pytest.raises(RuntimeError, match="rtool::scorecam_masks is not differentiable"):
        masked.sum().backward()


def assert_matches_reference(images, activations, mode, channels=None, atol=1e-5):
    masked, ranges = scorecam_masks(images, activations, mode, channels)
    expected_masked, expected_ranges = scorecam_masks_ref(images, activations, mode, channels)
    assert masked.shape == expected_masked.shape
    assert masked.dtype == images.dtype
    torch.testing.assert_close(ranges, expected_ranges, atol=atol, rtol=1e-5)
    torch.testing.assert_close(masked.float(), expected_masked.float(), atol=atol, rtol=1e-5)
    return masked, ranges


def test_operators_are_loaded():
    assert rtool.ops.operators_loaded()
    assert hasattr(torch.ops.rtool, "scorecam_masks")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "shape",
    [
        ((2, 3, 37, 41), (2, 5, 3, 4)),    # odd, non-square, non-integer scale
        ((1, 3, 224, 224), (1, 8, 7, 7)),  # resnet geometry
        ((3, 3, 16, 16), (3, 1, 1, 1)),    # C=1, h=w=1 (constant map)
        ((1, 1, 9, 5), (1, 4, 9, 5)),      # same size (identity resample), one input channel
        ((2, 3, 8, 8), (2, 3, 16, 16)),    # downsampling
    ],
)
def test_matches_reference_random(mode, shape, rng):
    image_shape, act_shape = shape
    images = torch.randn(image_shape, generator=rng)
    activations = torch.randn(act_shape, generator=rng)
    assert_matches_reference(images, activations, mode)


@pytest.mark.parametrize("mode", MODES)
def test_rows_are_image_major(mode, rng):
    images = torch.randn(2, 3, 10, 12, generator=rng)
    activations = torch.randn(2, 4, 3, 3, generator=rng)
    masked, _ = scorecam_masks(images, activations, mode)
    single, _ = scorecam_masks(images[1:], activations[1:], mode)
    torch.testing.assert_close(masked[4:8], single)


def test_parity_relu_no_min_shift_and_zero_range():
    images = torch.ones(1, 3, 4, 4)
    # channel 0: all negative -> ReLU gives 0 -> range 0 -> divide by 1 -> zero mask
    # channel 1: constant 2 -> range 0 -> mask stays 2 (amplifies the input)
    # channel 2: values in [1, 3] -> mask = U / 2, minimum 0.5 (no min shift)
    activations = torch.stack([torch.full((2, 2), -1.0), torch.full((2, 2), 2.0),
                               torch.tensor([[1.0, 1.0], [3.0, 3.0]])])[None]
    masked, ranges = scorecam_masks(images, activations, "parity")
    assert torch.all(masked[0] == 0)
    assert torch.allclose(masked[1], torch.full_like(masked[1], 2.0))
    assert ranges[0] == 0 and ranges[1] == 0 and ranges[2] == pytest.approx(2.0)
    assert masked[2].min().item() == pytest.approx(0.5) and masked[2].max().item() == pytest.approx(1.5)


def test_minmax_spans_zero_to_one(rng):
    images = torch.ones(1, 3, 20, 20)
    masked, _ = scorecam_masks(images, torch.randn(1, 6, 5, 5, generator=rng), "minmax")
    lows = masked.amin(dim=(1, 2, 3))
    highs = masked.amax(dim=(1, 2, 3))
    torch.testing.assert_close(lows, torch.zeros(6))
    torch.testing.assert_close(highs, torch.ones(6), atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", MODES)
def test_channel_subset_and_pairs(mode, rng):
    images = torch.randn(3, 3, 11, 13, generator=rng)
    activations = torch.randn(3, 6, 4, 4, generator=rng)
    subset = torch.tensor([5, 0, 3])
    masked, _ = assert_matches_reference(images, activations, mode, subset)
    assert masked.shape == (9, 3, 11, 13)
    full, _ = scorecam_masks(images, activations, mode)
    torch.testing.assert_close(masked[3 + 1], full[6 + 0])  # image 1, channel 0
    pairs = torch.tensor([[2, 5], [0, 0], [2, 1], [1, 3]])
    masked_pairs, _ = assert_matches_reference(images, activations, mode, pairs)
    torch.testing.assert_close(masked_pairs[0], full[2 * 6 + 5])
    torch.testing.assert_close(masked_pairs[3], full[1 * 6 + 3])


@pytest.mark.parametrize("mode", MODES)
def test_empty_batch_and_empty_channel_list(mode):
    masked, ranges = scorecam_masks(torch.randn(0, 3, 8, 8), torch.randn(0, 4, 2, 2), mode)
    assert masked.shape == (0, 3, 8, 8) and ranges.shape == (0,)
    masked, ranges = scorecam_masks(torch.randn(2, 3, 8, 8), torch.randn(2, 4, 2, 2), mode,
                                    torch.empty(0, dtype=torch.long))
    assert masked.shape == (0, 3, 8, 8) and ranges.shape == (0,)


@pytest.mark.parametrize("mode", MODES)
def test_non_contiguous_inputs(mode, rng):
    images = torch.randn(2, 3, 30, 26, generator=rng).transpose(2, 3)  # [2,3,26,30], non-contiguous
    activations = torch.randn(2, 4, 6, 5, generator=rng)[:, ::2]        # strided channel view
    assert not images.is_contiguous() and not activations.is_contiguous()
    assert_matches_reference(images, activations, mode)


@pytest.mark.parametrize("mode", MODES)
def test_channels_last_in_channels_last_out(mode, rng):
    images = torch.randn(2, 3, 20, 24, generator=rng).contiguous(memory_format=torch.channels_last)
    activations = torch.randn(2, 5, 5, 6, generator=rng).contiguous(memory_format=torch.channels_last)
    masked, _ = assert_matches_reference(images, activations, mode)
    assert masked.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("mode", MODES)
def test_reduced_and_double_precision(dtype, mode, rng):
    images = torch.randn(2, 3, 17, 19, generator=rng).to(dtype)
    activations = torch.randn(2, 3, 4, 5, generator=rng).to(dtype)
    masked, _ = scorecam_masks(images, activations, mode)
    expected, _ = scorecam_masks_ref(images, activations, mode)
    assert masked.dtype == dtype
    # Both compute the mask in float32 and round the product once; allow one ulp of the low-precision type.
    tol = {torch.bfloat16: 1e-2, torch.float16: 2e-3, torch.float64: 1e-6}[dtype]
    torch.testing.assert_close(masked.double(), expected.double(), atol=tol, rtol=tol)


@pytest.mark.parametrize(
    "images, activations, kwargs, message",
    [
        (torch.randn(3, 8, 8), torch.randn(1, 2, 2, 2), {}, "images must be 4-D"),
        (torch.randn(1, 3, 8, 8), torch.randn(2, 2, 2), {}, "activations must be 4-D"),
        (torch.randn(2, 3, 8, 8), torch.randn(3, 2, 2, 2), {}, "images has batch size 2 but activations has batch size 3"),
        (torch.randn(1, 3, 8, 8), torch.randn(1, 2, 2, 2), {"mode": "median"}, "mode must be 'parity' or 'minmax'"),
        (torch.randn(1, 3, 8, 8), torch.randn(1, 2, 2, 2), {"channels": torch.tensor([0, 2])},
         "channel index 2, out of range for activations with 2 channels"),
        (torch.randn(1, 3, 8, 8), torch.randn(1, 2, 2, 2), {"channels": torch.tensor([-1])}, "channel index -1"),
        (torch.randn(1, 3, 8, 8), torch.randn(1, 2, 2, 2), {"channels": torch.tensor([[1, 0]])},
         "image index 1, out of range for a batch of 1"),
        (torch.randn(1, 3, 8, 8), torch.randn(1, 2, 2, 2), {"channels": torch.tensor([0.0])}, "channels must be int64"),
        (torch.randint(0, 5, (1, 3, 8, 8)), torch.randn(1, 2, 2, 2), {}, "images must be floating point"),
    ],
)
def test_bad_input_names_the_argument(images, activations, kwargs, message):
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        scorecam_masks(images, activations, **kwargs)


@pytest.mark.parametrize("index", range(len(sample_inputs())))
def test_opcheck(index):
    args, kwargs = sample_inputs()[index]
    torch.library.opcheck(torch.ops.rtool.scorecam_masks.default, args, kwargs)


def test_torch_compile_uses_fake_kernel(rng):
    images = torch.randn(2, 3, 12, 10, generator=rng)
    activations = torch.randn(2, 4, 3, 3, generator=rng)

    def masked_sum(x, a):
        masked, ranges = torch.ops.rtool.scorecam_masks(x, a, "minmax", None, 1e-8)
        return masked.sum(dim=(1, 2, 3)) * ranges

    compiled = torch.compile(masked_sum, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(images, activations), masked_sum(images, activations))


def test_torchscript_calls_the_operator(rng):
    @torch.jit.script
    def scripted(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        masked, ranges = torch.ops.rtool.scorecam_masks(x, a, "parity", None, 1e-8)
        return masked

    images = torch.randn(1, 3, 9, 9, generator=rng)
    activations = torch.randn(1, 2, 3, 3, generator=rng)
    torch.testing.assert_close(scripted(images, activations), scorecam_masks_ref(images, activations)[0])


def test_cuda_compiled_flag_is_a_bool():
    assert isinstance(rtool.ops.cuda_compiled(), bool)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mode", MODES)
def test_cuda_matches_reference(dtype, mode, rng):
    assert rtool.ops.cuda_compiled(), "a GPU is present but rtool was built without CUDA kernels"
    for args, kwargs in sample_inputs("cuda"):
        if args[2] != mode:
            continue
        args = (args[0].to(dtype), args[1].to(dtype), *args[2:])
        tol = 1e-5 if dtype == torch.float32 else 1e-2
        got, expected = scorecam_masks(*args, **kwargs), scorecam_masks_ref(*args, **kwargs)
        torch.testing.assert_close(got[0].float(), expected[0].float(), atol=tol, rtol=tol)
        torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=1e-5)
    images = torch.randn(3, 3, 61, 47, generator=rng).to("cuda", dtype)
    activations = torch.randn(3, 7, 5, 4, generator=rng).to("cuda", dtype)
    for channels in (None, torch.tensor([[2, 6], [0, 1]], device="cuda")):
        masked, ranges = scorecam_masks(images, activations, mode, channels)
        expected, expected_ranges = scorecam_masks_ref(images, activations, mode, channels)
        tol = 1e-5 if dtype == torch.float32 else 1e-2
        torch.testing.assert_close(masked.float(), expected.float(), atol=tol, rtol=tol)
        torch.testing.assert_close(ranges, expected_ranges, atol=1e-5, rtol=1e-5)
    cl = images.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(scorecam_masks(cl, activations, mode)[0].float(),
                               scorecam_masks_ref(cl, activations, mode)[0].float(), atol=1e-2, rtol=1e-2)
