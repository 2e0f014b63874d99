"""Surprise adequacy: every variant equals a naive per-target loop port (float64) on tie-heavy random data."""
import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.covariance import EmpiricalCovariance

from rtool.corner import (
    LOGITS,
    PRESETS,
    ReferenceSet,
    Traces,
    activation_traces,
    dsa,
    lsa,
    mdsa,
    surprise_scores,
)
from rtool.errors import UsageError
from rtool.models import CornerConvNet

NUM_CLASSES = 5


def tie_heavy_data(seed=3, n=300, q=90, dim=4):
    """Traces on a 0.5 grid (exact arithmetic, many equal distances) with duplicate points inside and
    across classes, an empty class (3), and targets that copy reference points."""
    gen = np.random.default_rng(seed)
    refs = np.round(gen.normal(size=(n, dim)) * 2) / 2
    labels = gen.choice([0, 1, 2, 4], size=n)
    refs[10:20] = refs[0:10]                       # duplicates (labels may differ: across classes)
    labels[10:15] = labels[0:5]                    # half of them in the same class
    queries = np.round(gen.normal(size=(q, dim)) * 2) / 2
    queries[:20] = refs[30:50]                     # targets that are reference points
    queries[20:25] = refs[0:5]                     # ... and duplicated ones
    targets = gen.choice([0, 1, 2, 4], size=q)
    return refs, labels, queries, targets


# ----------------------------------------------------------------------------- naive loop ports (numpy)

def _rows(labels, c, skip, same=True):
    rows = np.nonzero((labels == c) if same else (labels != c))[0]
    return rows[rows != skip]


def naive_dsa(refs, labels, queries, targets, variant, k=20, self_index=None):
    out = []
    for i, (x, c) in enumerate(zip(queries, targets)):
        skip = -1 if self_index is None else self_index[i]
        same = _rows(labels, c, skip)
        other = _rows(labels, c, skip, same=False)
        if variant in ("dsa0", "dsa1"):
            if same.size == 0:
                out.append(np.nan)
                continue
            d_same = np.linalg.norm(refs[same] - x, axis=1)
            a = same[np.argmin(d_same)]
            dist_a = d_same.min()
            start = refs[a] if variant == "dsa0" else x
            dist_b = np.linalg.norm(refs[other] - start, axis=1).min() if other.size else np.inf
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append(dist_a / dist_b)
            continue
        d = np.full(NUM_CLASSES, np.inf)
        for j in range(NUM_CLASSES):
            rows = _rows(labels, j, skip)
            if rows.size == 0:
                continue
            if variant == "dsa2":
                centre = refs[rows].mean(axis=0)
            else:
                dists = np.linalg.norm(refs[rows] - x, axis=1)
                centre = refs[rows[np.argsort(dists, kind="stable")[:k]]].mean(axis=0)
            d[j] = np.linalg.norm(x - centre)
        if not np.isfinite(d[c]):
            out.append(np.nan)
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(d[c] / np.delete(d, c).min())
    return np.array(out)


def naive_lsa(refs, labels, queries, targets, threshold=1e-5):
    removed = set()
    for c in np.unique(labels):
        block = refs[labels == c]
        removed |= {i for i in range(refs.shape[1]) if np.var(block[:, i]) < threshold}
    keep = [i for i in range(refs.shape[1]) if i not in removed]
    out = []
    for x, c in zip(queries, targets):
        block = refs[labels == c][:, keep]
        out.append(-scipy.stats.gaussian_kde(block.T).logpdf(x[keep][:, None])[0] if block.shape[0] > 1 else np.nan)
    return np.array(out)


def naive_mdsa(refs, labels, queries, targets):
    out = []
    for x, c in zip(queries, targets):
        block = refs[labels == c]
        if block.shape[0] == 0:
            out.append(np.nan)
            continue
        out.append(np.sqrt(EmpiricalCovariance().fit(block).mahalanobis(x[None])[0]))
    return np.array(out)


def assert_same_scores(got, expected):
    got = got.numpy()
    assert got.shape == expected.shape
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- variants vs the loop ports

@pytest.fixture(scope="module")
def data():
    refs, labels, queries, targets = tie_heavy_data()
    reference = ReferenceSet.build(torch.from_numpy(refs), torch.from_numpy(labels), NUM_CLASSES)
    return refs, labels, queries, targets, reference


@pytest.mark.parametrize("variant, k", [("dsa0", None), ("dsa1", None), ("dsa2", None), ("dsa3", 20), ("dsa3", 1),
                                        ("dsa3", 7), ("dsa3", 150)])
def test_dsa_equals_loop(data, variant, k):
    refs, labels, queries, targets, reference = data
    result = dsa(reference, torch.from_numpy(queries), torch.from_numpy(targets), variant, k or 20)
    assert_same_scores(result.scores, naive_dsa(refs, labels, queries, targets, variant, k or 20))
    assert result.scores.dtype == torch.float64 and result.variant == variant


@pytest.mark.parametrize("variant", ["dsa0", "dsa1", "dsa2", "dsa3"])
def test_self_exclusion_equals_loop(data, variant):
    refs, labels, _, _, reference = data
    targets = np.where(np.arange(len(labels)) % 3 == 0, (labels + 1) % NUM_CLASSES, labels)  # some off their group
    self_index = np.arange(len(refs))
    self_index[::7] = -1  # and some not excluded
    result = dsa(reference, torch.from_numpy(refs), torch.from_numpy(targets), variant, 9,
                 self_index=torch.from_numpy(self_index))
    assert_same_scores(result.scores, naive_dsa(refs, labels, refs, targets, variant, 9, self_index))


def test_dsa0_nearest_points_follow_lowest_index_ties(data):
    refs, labels, queries, targets, reference = data
    result = dsa(reference, torch.from_numpy(queries), torch.from_numpy(targets), "dsa0")
    for i in range(len(queries)):
        same = np.nonzero(labels == targets[i])[0]
        d = np.linalg.norm(refs[same] - queries[i], axis=1)
        a = same[np.argmin(d)]
        other = np.nonzero(labels != targets[i])[0]
        b = other[np.argmin(np.linalg.norm(refs[other] - refs[a], axis=1))]
        assert (result.nearest_same[i].item(), result.nearest_other[i].item()) == (a, b)


def test_dsa0_excluded_target_is_not_its_own_x_b():
    # x_a's nearest other-class point is the target itself; leaving the target out must skip it.
    refs = torch.tensor([[0.0], [1.0], [5.0]], dtype=torch.float64)
    reference = ReferenceSet.build(refs, torch.tensor([0, 1, 1]))
    target = torch.tensor([[1.0]], dtype=torch.float64)
    kept = dsa(reference, target, torch.tensor([0]), "dsa0")
    left_out = dsa(reference, target, torch.tensor([0]), "dsa0", self_index=torch.tensor([1]))
    assert kept.dist_b.item() == 1.0 and kept.nearest_other.item() == 1
    assert left_out.dist_b.item() == 5.0 and left_out.nearest_other.item() == 2
    # the cache still holds the exclusion-free answer
    assert dsa(reference, target, torch.tensor([0]), "dsa0").dist_b.item() == 1.0


def test_dist_b_cache_is_reused(data):
    refs, labels, queries, targets, _ = data
    reference = ReferenceSet.build(torch.from_numpy(refs), torch.from_numpy(labels), NUM_CLASSES)
    first = dsa(reference, torch.from_numpy(queries[:40]), torch.from_numpy(targets[:40]), "dsa0")
    cached = int((~torch.isnan(reference._dist_b)).sum())
    assert 0 < cached <= 40
    again = dsa(reference, torch.from_numpy(queries[:40]), torch.from_numpy(targets[:40]), "dsa0")
    assert int((~torch.isnan(reference._dist_b)).sum()) == cached
    assert torch.equal(first.scores.nan_to_num(-1), again.scores.nan_to_num(-1))


def test_float32_references_score_like_float64(data):
    refs, labels, queries, targets, reference = data
    single = ReferenceSet.build(torch.from_numpy(refs).float(), torch.from_numpy(labels), NUM_CLASSES)
    for variant in ("dsa0", "dsa3"):
        got = dsa(single, torch.from_numpy(queries).float(), torch.from_numpy(targets), variant).scores
        want = dsa(reference, torch.from_numpy(queries), torch.from_numpy(targets), variant).scores
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0, equal_nan=True)


def test_block_size_does_not_change_scores(data):
    refs, labels, queries, targets, reference = data
    q, t = torch.from_numpy(queries), torch.from_numpy(targets)
    for variant in ("dsa0", "dsa3"):
        whole = dsa(reference, q, t, variant, block=4096).scores
        torch.testing.assert_close(dsa(reference, q, t, variant, block=7).scores, whole, equal_nan=True)


def test_lsa_and_mdsa_equal_loop():
    gen = np.random.default_rng(5)
    refs = gen.normal(size=(240, 4))
    refs[:, 3] = 1.5  # a constant feature: LSA drops it
    labels = gen.integers(0, 3, size=240)
    queries = gen.normal(size=(30, 4))
    targets = gen.integers(0, 3, size=30)
    reference = ReferenceSet.build(torch.from_numpy(refs), torch.from_numpy(labels))
    result = lsa(reference, torch.from_numpy(queries), torch.from_numpy(targets))
    assert result.kept_features.tolist() == [0, 1, 2] and result.unfit_classes == ()
    np.testing.assert_allclose(result.scores.numpy(), naive_lsa(refs, labels, queries, targets), rtol=1e-10)
    got = mdsa(reference, torch.from_numpy(queries), torch.from_numpy(targets)).scores.numpy()
    np.testing.assert_allclose(got, naive_mdsa(refs, labels, queries, targets), rtol=1e-8)


def test_lsa_and_mdsa_unfit_class_is_nan():
    refs = torch.tensor([[0.0, 1.0], [1.0, 0.5], [2.0, 2.5], [3.0, -1.0]], dtype=torch.float64)
    reference = ReferenceSet.build(refs, torch.tensor([0, 0, 0, 0]), num_classes=2)
    queries = torch.zeros(2, 2, dtype=torch.float64)
    result = lsa(reference, queries, torch.tensor([0, 1]))
    assert result.unfit_classes == (1,) and np.isfinite(result.scores[0].item()) and np.isnan(result.scores[1].item())
    result = mdsa(reference, queries, torch.tensor([0, 1]))
    assert result.unfit_classes == (1,) and np.isnan(result.scores[1].item())


# ----------------------------------------------------------------------------- label sources, presets, errors

def _traces(values, predictions, labels):
    return Traces(torch.as_tensor(values), torch.as_tensor(predictions), torch.as_tensor(labels), (LOGITS,),
                  (values.shape[1],))


def test_label_sources_pick_the_grouping_and_the_target_label(data):
    refs, labels, queries, targets, _ = data
    predictions = np.where(np.arange(len(labels)) % 5 == 0, (labels + 1) % NUM_CLASSES, labels)
    train = _traces(refs, predictions, labels)
    test = _traces(queries, targets, (targets + 1) % NUM_CLASSES)
    for ref_source, ref_labels in (("true", labels), ("pred", predictions)):
        for target_source, target_labels in (("pred", targets), ("true", (targets + 1) % NUM_CLASSES)):
            got = surprise_scores(train, test, "dsa3", k=5, reference_labels=ref_source, target_labels=target_source,
                                  num_classes=NUM_CLASSES)
            assert_same_scores(got.scores, naive_dsa(refs, ref_labels, queries, target_labels, "dsa3", 5))


def test_corner_preset_scores_training_set_without_exclusion(data):
    refs, labels, _, _, _ = data
    predictions = np.where(np.arange(len(labels)) % 4 == 0, (labels + 2) % NUM_CLASSES, labels)
    train = _traces(refs, predictions, labels)
    got = surprise_scores(train, train, num_classes=NUM_CLASSES, **PRESETS["corner"])
    assert_same_scores(got.scores, naive_dsa(refs, labels, refs, predictions, "dsa3", 20))
    excluded = surprise_scores(train, train, "dsa1", num_classes=NUM_CLASSES, exclude_self=True)
    assert_same_scores(excluded.scores, naive_dsa(refs, labels, refs, predictions, "dsa1", 20, np.arange(len(refs))))
    sadl = surprise_scores(train, train, num_classes=NUM_CLASSES, **PRESETS["sadl"])
    assert_same_scores(sadl.scores, naive_dsa(refs, predictions, refs, predictions, "dsa0"))


@pytest.mark.parametrize("k", [0, 301, 2.5, -3])
def test_bad_k_is_a_usage_error(data, k):
    _, _, queries, targets, reference = data
    with pytest.raises(UsageError, match=r"k must be an integer in \[1, 300\]"):
        dsa(reference, torch.from_numpy(queries), torch.from_numpy(targets), "dsa3", k)


def test_other_bad_inputs_are_usage_errors(data):
    refs, labels, queries, targets, reference = data
    q, t = torch.from_numpy(queries), torch.from_numpy(targets)
    with pytest.raises(UsageError, match="DSA variant must be one of"):
        dsa(reference, q, t, "dsa9")
    with pytest.raises(UsageError, match=r"target label 5 is out of range for a reference set of 5 classes"):
        dsa(reference, q, torch.full_like(t, 5), "dsa0")
    with pytest.raises(UsageError, match=r"queries must be \[Q, 4\] traces"):
        dsa(reference, q[:, :3], t)
    train = _traces(refs, labels, labels)
    with pytest.raises(UsageError, match="exclude_self needs the targets to be the reference traces"):
        surprise_scores(train, _traces(queries, targets, targets), exclude_self=True)
    with pytest.raises(UsageError, match="exclude_self is supported for"):
        surprise_scores(train, train, "lsa", exclude_self=True)
    with pytest.raises(UsageError, match="reference_labels must be one of true, pred"):
        surprise_scores(train, train, reference_labels="gt")
    no_truth = Traces(train.values, train.predictions, None, train.layers, train.widths)
    with pytest.raises(UsageError, match="needs ground-truth labels"):
        surprise_scores(no_truth, no_truth)


# ----------------------------------------------------------------------------- activation traces

@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return CornerConvNet().eval()


def test_traces_concatenate_layers_in_order(tiny_model):
    images = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    traces = activation_traces(tiny_model, images, ["conv2", "conv1", "fc1", LOGITS], batch_size=3,
                               labels=torch.arange(7) % 10)
    assert traces.values.shape == (7, 64 + 24 + 1000 + 10) and traces.widths == (64, 24, 1000, 10)
    assert traces.layers == ("conv2", "conv1", "fc1", LOGITS)
    with torch.no_grad():
        c1 = tiny_model.conv1(images)
        c2 = tiny_model.conv2(c1)
        logits = tiny_model(images)
    expected = torch.cat([c2.mean((2, 3)), c1.mean((2, 3)), tiny_model.fc1(c2.flatten(1)), logits], 1)
    torch.testing.assert_close(traces.values, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(traces.predictions, logits.argmax(1)) and torch.equal(traces.labels, torch.arange(7) % 10)


def test_traces_from_a_dataset_default_to_logits(tiny_model):
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    dataset = torch.utils.data.TensorDataset(images, torch.tensor([3, 1, 4, 1, 5]))
    traces = activation_traces(tiny_model, dataset, batch_size=2)
    assert traces.layers == (LOGITS,) and traces.values.shape == (5, 10)
    assert traces.labels.tolist() == [3, 1, 4, 1, 5]
    assert traces.subset([4, 0]).labels.tolist() == [5, 3]


def test_dropout_quirk_is_seeded_and_mode_restored(tiny_model):
    images = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    clean = activation_traces(tiny_model, images)
    noisy = activation_traces(tiny_model, images, dropout=True, seed=4)
    again = activation_traces(tiny_model, images, dropout=True, seed=4)
    assert not torch.allclose(clean.values, noisy.values) and torch.equal(noisy.values, again.values)
    assert not tiny_model.training and not tiny_model.dropout.training


def test_unknown_layer_is_a_usage_error_naming_it(tiny_model):
    with pytest.raises(UsageError, match="layer 'conv7' not found"):
        activation_traces(tiny_model, torch.rand(2, 1, 28, 28), ["conv1", "conv7"])


def test_surprise_coverage_counts_buckets_like_sadl():
    from rtool.corner import surprise_coverage

    scores = np.array([0.0, 0.05, 0.5, 0.51, 3.0, np.nan])
    edges = np.linspace(0.0, 1.0, 10)
    expected = np.unique(np.digitize(scores[:-1], edges)).size / 10
    # buckets 1, 5 and the overflow bucket
    assert surprise_coverage(torch.from_numpy(scores), upper=1.0, buckets=10) == expected == 0.3
    assert surprise_coverage(torch.tensor([]), upper=1.0) == 0.0
    with pytest.raises(UsageError, match="buckets must be a positive integer"):
        surprise_coverage(scores, buckets=0)
