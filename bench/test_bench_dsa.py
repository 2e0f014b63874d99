"""Surprise adequacy: rtool.corner.dsa (the dsa_knn operator) vs plain ports of the reference loops.

Two workloads, one group each, so pytest-benchmark prints them side by side:
- DSA3 (k=20) of 1,000 targets against 60,000 x 10 logits (the corner-case repo's setting): rtool, a naive
  vectorisation over query blocks (torch.cdist per class + topk), and a plain numpy port of the authors'
  per-target loop (per class: all distances, argsort, mean of the k nearest, distance to that mean).
- DSA0 (SADL) of 1,000 targets against 60,000 x 128 traces: rtool and a port of SADL's per-target loop
  (nearest same-class trace, then the nearest other-class trace from it, the other-class row list built
  per target by a set difference as SADL does).
The loops are timed on a subset of targets; `extra_info["per_target_ms"]` holds the per-target time of
every entry, so the ratio is read off one run. Every round builds a fresh ReferenceSet, so no dist_b cache
carries over between rounds. Each loop's scores are checked against rtool's on its subset.
"""
import numpy as np
import pytest
import torch

from rtool.corner import ReferenceSet, dsa

NUM_REFS, NUM_QUERIES, NUM_CLASSES = 60_000, 1_000, 10
LOOP_TARGETS = {"dsa3": 25, "dsa0": 10}


def make_traces(dim: int, count: int, seed: int, relu: bool):
    """Traces clustered by class (class means plus noise), labels, and the 'prediction' (nearest mean)."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(NUM_CLASSES, dim, generator=torch.Generator().manual_seed(99)) * 2.5
    labels = torch.randint(0, NUM_CLASSES, (count,), generator=gen)
    values = centres[labels] + torch.randn(count, dim, generator=gen) * 1.5
    if relu:
        values = values.relu()
    predictions = torch.cdist(values, centres).argmin(1)
    return values.float().contiguous(), labels, predictions


@pytest.fixture(scope="module")
def logits():
    refs, ref_labels, _ = make_traces(NUM_CLASSES, NUM_REFS, 0, relu=False)
    queries, _, query_pred = make_traces(NUM_CLASSES, NUM_QUERIES, 1, relu=False)
    return refs, ref_labels, queries, query_pred


@pytest.fixture(scope="module")
def hidden():
    refs, _, ref_pred = make_traces(128, NUM_REFS, 2, relu=True)
    queries, _, query_pred = make_traces(128, NUM_QUERIES, 3, relu=True)
    return refs, ref_pred, queries, query_pred


def authors_dsa3_loop(train_ats, train_labels, targets, target_labels, k=20):
    """Per target: for every class, all distances, argsort, mean of the k nearest, distance to it."""
    groups = [train_ats[train_labels == j] for j in range(NUM_CLASSES)]
    scores = []
    for at, c in zip(targets, target_labels):
        d = np.empty(NUM_CLASSES)
        for j, group in enumerate(groups):
            dists = np.linalg.norm(group - at, axis=1)
            nearest = group[np.argsort(dists)[:k]]
            d[j] = np.linalg.norm(at - nearest.mean(axis=0))
        scores.append(d[c] / np.min(np.delete(d, c)))
    return np.array(scores)


def cdist_dsa3(refs, ref_labels, queries, labels, k=20, block=100):
    """The naive vectorisation: per block of queries and per class, torch.cdist, topk, gather, mean."""
    groups = [refs[ref_labels == j] for j in range(NUM_CLASSES)]
    out = []
    for start in range(0, len(queries), block):
        q = queries[start:start + block]
        d = torch.empty(len(q), NUM_CLASSES)
        for j, group in enumerate(groups):
            nearest = torch.cdist(q, group).topk(k, dim=1, largest=False).indices
            d[:, j] = (q - group[nearest].mean(1)).norm(dim=1)
        own = d.gather(1, labels[start:start + block, None])[:, 0]
        d.scatter_(1, labels[start:start + block, None], float("inf"))
        out.append(own / d.min(1).values)
    return torch.cat(out)


def sadl_dsa0_loop(train_ats, train_pred, targets, target_pred):
    """SADL's fetch_dsa loop: class row lists, then per target x_a and the nearest other-class point to it."""
    class_matrix = {c: np.nonzero(train_pred == c)[0].tolist() for c in range(NUM_CLASSES)}
    all_idx = list(range(len(train_ats)))
    scores = []
    for at, c in zip(targets, target_pred):
        same = train_ats[class_matrix[c]]
        dists = np.linalg.norm(same - at, axis=1)
        x_a = same[np.argmin(dists)]
        others = train_ats[list(set(all_idx) - set(class_matrix[c]))]
        scores.append(dists.min() / np.linalg.norm(others - x_a, axis=1).min())
    return np.array(scores)


def run(benchmark, fn, rounds, targets):
    result = benchmark.pedantic(fn, rounds=rounds, warmup_rounds=1)
    benchmark.extra_info["targets_timed"] = targets
    benchmark.extra_info["per_target_ms"] = benchmark.stats.stats.min * 1000 / targets
    return result


def rtool_scores(refs, ref_labels, queries, labels, variant):
    reference = ReferenceSet.build(refs, ref_labels, NUM_CLASSES)
    return dsa(reference, queries, labels, variant, 20).scores


@pytest.mark.parametrize("implementation", ["rtool", "cdist", "authors-loop"])
def test_dsa3_logits(benchmark, logits, implementation):
    refs, ref_labels, queries, labels = logits
    benchmark.group = "dsa3 k=20, 60000x10 logits, 1000 targets"
    if implementation == "rtool":
        scores = run(benchmark, lambda: rtool_scores(refs, ref_labels, queries, labels, "dsa3"), 5, NUM_QUERIES)
        torch.testing.assert_close(scores.float(), cdist_dsa3(refs, ref_labels, queries, labels), rtol=1e-4, atol=1e-5)
    elif implementation == "cdist":
        run(benchmark, lambda: cdist_dsa3(refs, ref_labels, queries, labels), 3, NUM_QUERIES)
    else:
        n = LOOP_TARGETS["dsa3"]
        args = (refs.numpy(), ref_labels.numpy(), queries[:n].numpy(), labels[:n].numpy())
        scores = run(benchmark, lambda: authors_dsa3_loop(*args), 3, n)
        expected = rtool_scores(refs, ref_labels, queries[:n], labels[:n], "dsa3").numpy()
        np.testing.assert_allclose(scores, expected, rtol=1e-4)


@pytest.mark.parametrize("implementation", ["rtool", "sadl-loop"])
def test_dsa0_hidden(benchmark, hidden, implementation):
    refs, ref_pred, queries, query_pred = hidden
    benchmark.group = "dsa0 (SADL), 60000x128 traces, 1000 targets"
    if implementation == "rtool":
        run(benchmark, lambda: rtool_scores(refs, ref_pred, queries, query_pred, "dsa0"), 3, NUM_QUERIES)
    else:
        n = LOOP_TARGETS["dsa0"]
        args = (refs.numpy(), ref_pred.numpy(), queries[:n].numpy(), query_pred[:n].numpy())
        scores = run(benchmark, lambda: sadl_dsa0_loop(*args), 3, n)
        expected = rtool_scores(refs, ref_pred, queries[:n], query_pred[:n], "dsa0").numpy()
        np.testing.assert_allclose(scores, expected, rtol=1e-4)
