"""rtool.ops.dsa_knn vs its plain-PyTorch reference, opcheck, errors and the CUDA twin."""
import pytest
import torch

import rtool
from rtool.ops import dsa_knn, dsa_nearest
from rtool.ops.reference import dsa_knn_ref


def _offsets(sizes, device):
    return torch.tensor([0] + list(torch.tensor(sizes).cumsum(0).tolist()), dtype=torch.long, device=device)


def sample_inputs(device, requires_grad=False):
    """(args, kwargs) for dsa_knn: args = (queries, refs, class_offsets, k, self_index, chunk)."""
    gen = torch.Generator().manual_seed(7)

    def randn(*shape, dtype=torch.float64):
        return torch.randn(*shape, generator=gen, dtype=dtype).to(device).requires_grad_(requires_grad)

    def ints(*shape, dtype=torch.float64):
        # Small integers: every distance is exact, so ties are planted everywhere.
        return torch.randint(-2, 3, shape, generator=gen).to(device, dtype).requires_grad_(requires_grad)

    samples = []
    # random, several chunks per class, odd sizes
    refs = randn(53, 5)
    samples.append(((randn(9, 5), refs, _offsets([20, 0, 33], device), 4, None, 7), {}))
    # planted ties: integer grid points, duplicates in every class, queries that are reference rows
    refs = ints(60, 3)
    refs[10:15] = refs[0:5].detach()  # duplicate points in the same class
    refs[40:43] = refs[1:4].detach()  # and across classes
    queries = torch.cat([refs[:6].detach(), ints(7, 3)])
    self_index = torch.cat([torch.arange(6), torch.full((7,), -1)]).to(device)
    samples.append(((queries, refs, _offsets([25, 20, 15], device), 6, None, 8), {}))
    samples.append(((queries, refs, _offsets([25, 20, 15], device), 6, self_index, 2048), {}))
    # k larger than every class, empty class blocks at both ends and in the middle
    samples.append(((randn(4, 2), randn(7, 2), _offsets([0, 3, 0, 4, 0], device), 5, None, 3), {}))
    # one query, one reference, one feature
    samples.append(((randn(1, 1), randn(1, 1), _offsets([1], device), 1, None, 1), {}))
    # empty queries, empty references, zero classes
    samples.append(((randn(0, 4), randn(6, 4), _offsets([6], device), 2, None, 4), {}))
    samples.append(((randn(3, 4), randn(0, 4), _offsets([0, 0], device), 2, None, 4), {}))
    samples.append(((randn(3, 4), randn(0, 4), torch.zeros(1, dtype=torch.long, device=device), 2, None, 4), {}))
    # float32, non-contiguous inputs
    base = randn(40, 12, dtype=torch.float32)
    samples.append(((randn(16, 6, dtype=torch.float32)[::2], base[:, ::2], _offsets([13, 27], device), 3, None, 5),
                    {}))
    # wide traces (the BLAS path), duplicates and queries that copy reference rows
    wide = randn(90, 40)
    wide[50:60] = wide[0:10].detach()
    samples.append(((torch.cat([wide[:5].detach(), randn(12, 40)]), wide, _offsets([30, 0, 60], device), 12,
                     None, 16), {}))
    wide32 = ints(70, 48, dtype=torch.float32)
    samples.append(((wide32[:9].detach(), wide32, _offsets([35, 35], device), 8, torch.arange(9).to(device), 32), {}))
    # float32 with points far from the origin (the GEMM form loses digits there: the re-rank must fix it)
    far = randn(200, 4, dtype=torch.float32) * 1e-3 + 1e3
    samples.append(((far[:10].detach() + 1e-4, far, _offsets([100, 100], device), 5, None, 64), {}))
    return samples


def _check(args, kwargs):
    distances, indices = dsa_knn(*args, **kwargs)
    expected_d, expected_i = dsa_knn_ref(*[a.detach() if torch.is_tensor(a) else a for a in args], **kwargs)
    assert distances.dtype == torch.float64 and indices.dtype == torch.long
    assert distances.shape == expected_d.shape
    assert torch.equal(indices, expected_i)
    torch.testing.assert_close(distances, expected_d, rtol=1e-12, atol=1e-12)


@pytest.fixture(params=["simd", "portable"])
def cpu_path(request, monkeypatch):
    """Narrow traces run the AVX-512 scan where the CPU has it; RTOOL_DSA_PORTABLE forces the portable kernel."""
    if request.param == "portable":
        monkeypatch.setenv("RTOOL_DSA_PORTABLE", "1")
    return request.param


@pytest.mark.parametrize("case", range(len(sample_inputs("cpu"))))
def test_matches_reference(case, cpu_path):
    args, kwargs = sample_inputs("cpu")[case]
    _check(args, kwargs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_larger_random_matches_reference(rng, cpu_path, dtype):
    refs = (torch.randn(3000, 10, generator=rng) * 4 + 7).to(dtype)
    refs[2000:2040] = refs[100:140]  # duplicates across classes and within the last class
    refs[2500:2510] = refs[2000:2010]
    queries = torch.cat([refs[:50] + 1e-3, refs[2000:2005], torch.randn(78, 10, generator=rng).to(dtype)])
    self_index = torch.cat([torch.full((50,), -1), torch.arange(2000, 2005), torch.full((78,), -1)])
    _check((queries, refs, _offsets([1000, 1200, 800], "cpu"), 20, None, 512), {})
    _check((queries, refs, _offsets([1000, 1200, 800], "cpu"), 20, self_index, 512), {})


@pytest.mark.parametrize("dim", [1, 7, 16, 17, 32])
def test_every_narrow_width_matches_reference(rng, dim):
    # The scan is compiled per width; uneven class sizes leave partial tiles at every class end.
    refs = torch.randn(211, dim, generator=rng)
    queries = torch.randn(13, dim, generator=rng)
    _check((queries, refs, _offsets([64, 1, 0, 97, 49], "cpu"), 5, None, 64), {})


def test_ties_go_to_the_lowest_row(cpu_path):
    refs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    distances, indices = dsa_knn(torch.zeros(1, 2, dtype=torch.float64), refs, _offsets([5], "cpu"), 5)
    assert indices.tolist() == [[[0, 1, 2, 3, 4]]]
    assert distances[0, 0].tolist() == [1.0, 1.0, 1.0, 1.0, 2.0]


def test_self_index_skips_that_row_only(cpu_path):
    refs = torch.tensor([[0.0], [0.0], [3.0]], dtype=torch.float64)
    _, indices = dsa_knn(refs, refs, _offsets([3], "cpu"), 2, torch.tensor([0, 1, -1]))
    assert indices[:, 0].tolist() == [[1, 2], [0, 2], [2, 0]]


def test_nearest_is_k_one(rng):
    refs = torch.randn(30, 3, generator=rng, dtype=torch.float64)
    queries = torch.randn(5, 3, generator=rng, dtype=torch.float64)
    offsets = _offsets([10, 20], "cpu")
    d1, i1 = dsa_nearest(queries, refs, offsets)
    dk, ik = dsa_knn(queries, refs, offsets, 4)
    assert d1.shape == (5, 2) and torch.equal(i1, ik[..., 0]) and torch.equal(d1, dk[..., 0])


def test_chunk_size_does_not_change_the_result(rng):
    # 40 features: the BLAS path, where chunk sets the block width (narrow traces use fixed tiles).
    refs = torch.randint(0, 3, (97, 40), generator=rng).double()
    queries = torch.randint(0, 3, (11, 40), generator=rng).double()
    offsets = _offsets([40, 57], "cpu")
    expected = dsa_knn(queries, refs, offsets, 9, None, 2048)
    for chunk in (1, 5, 40, 96):  # noqa: B007
        got = dsa_knn(queries, refs, offsets, 9, None, chunk)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.parametrize("case", range(len(sample_inputs("cpu"))))
def test_opcheck(case):
    args, kwargs = sample_inputs("cpu")[case]
    torch.library.opcheck(torch.ops.rtool.dsa_knn.default, args, kwargs)


def test_torch_compile_uses_fake_kernel(rng):
    refs = torch.randn(20, 3, generator=rng)
    queries = torch.randn(4, 3, generator=rng)
    offsets = _offsets([8, 12], "cpu")

    def nearest_sum(q, r):
        distances, indices = torch.ops.rtool.dsa_knn(q, r, offsets, 2, None, 2048)
        return distances.sum(-1), indices

    compiled = torch.compile(nearest_sum, backend="eager", fullgraph=True)
    got, expected = compiled(queries, refs), nearest_sum(queries, refs)
    torch.testing.assert_close(got[0], expected[0])
    assert torch.equal(got[1], expected[1])


def test_backward_says_not_differentiable(rng):
    queries = torch.randn(2, 3, generator=rng, requires_grad=True)
    distances, _ = dsa_knn(queries, torch.randn(5, 3, generator=rng), _offsets([5], "cpu"), 2)
    with pytest.raises(RuntimeError, match="not differentiable"):
        distances.sum().backward()


OK_Q, OK_R, OK_OFF = torch.zeros(2, 3), torch.zeros(4, 3), torch.tensor([0, 1, 4])


@pytest.mark.parametrize(
    "args, message",
    [
        ((torch.zeros(3), OK_R, OK_OFF, 1), "queries must be 2-D"),
        ((OK_Q, torch.zeros(4), OK_OFF, 1), "refs must be 2-D"),
        ((OK_Q.long(), OK_R, OK_OFF, 1), "queries must be float32 or float64"),
        ((OK_Q, OK_R.double(), OK_OFF, 1), "refs must have the dtype of queries"),
        ((OK_Q, torch.zeros(4, 2), OK_OFF, 1), "queries have 3 features but refs have 2"),
        ((OK_Q, OK_R, OK_OFF.int(), 1), "class_offsets must be int64"),
        ((OK_Q, OK_R, torch.tensor([1, 4]), 1), r"class_offsets\[0\] must be 0, got 1"),
        ((OK_Q, OK_R, torch.tensor([0, 3]), 1), r"class_offsets\[-1\] must equal the number of refs \(4\), got 3"),
        ((OK_Q, OK_R, torch.tensor([0, 3, 2, 4]), 1), "class_offsets must be non-decreasing, got 3 then 2"),
        ((OK_Q, OK_R, OK_OFF, 0), "k must be >= 1, got 0"),
        ((OK_Q, OK_R, OK_OFF, 1, torch.tensor([0, 4])), r"self_index holds 4, expected -1 \(no exclusion\)"),
        ((OK_Q, OK_R, OK_OFF, 1, torch.tensor([0])), "self_index must be 1-D"),
        ((OK_Q, OK_R, OK_OFF, 1, None, 0), "chunk must be >= 1, got 0"),
    ],
)
def test_bad_input_names_the_argument(args, message):
    with pytest.raises(RuntimeError, match="rtool.dsa_knn: " + message):
        dsa_knn(*args)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("case", range(len(sample_inputs("cpu"))))
def test_cuda_matches_reference(case):
    assert rtool.ops.cuda_compiled(), "a GPU is present but rtool was built without CUDA kernels"
    args, kwargs = sample_inputs("cuda")[case]
    _check(args, kwargs)


@pytest.mark.parametrize("dim", [10, 40])
def test_nan_reference_rows_are_never_found(rng, dim, cpu_path):
    # NaN rows spread over the vector groups of both paths; the reference never finds them either.
    refs = torch.randn(300, dim, generator=rng)
    refs[torch.randperm(300, generator=rng)[:70]] = float("nan")
    queries = torch.randn(9, dim, generator=rng)
    _check((queries, refs, _offsets([150, 150], "cpu"), 20, None, 64), {})


def test_many_equal_rows_keep_the_lowest(rng, cpu_path):
    # 500 copies of one point: every tightening keeps all of them (they tie), and the 20 lowest rows win.
    refs = torch.cat([torch.ones(500, 10), torch.randn(300, 10, generator=rng)])[torch.arange(800).roll(150)]
    queries = torch.cat([torch.ones(2, 10), torch.ones(2, 10) + 1e-4])
    _check((queries, refs, _offsets([800], "cpu"), 20, None, 64), {})
    _, indices = dsa_knn(queries[:1], refs, _offsets([800], "cpu"), 20)
    assert indices[0, 0].tolist() == list(range(150, 170))
