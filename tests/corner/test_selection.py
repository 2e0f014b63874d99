"""Corner-case selection (spec §A.6): counts over the models' top-k lists and the deterministic tie-break."""
from collections import defaultdict

import numpy as np
import pytest
import torch

from rtool.corner import TIE_BREAK, select_corner_cases, top_k_per_model
from rtool.errors import UsageError


def naive_select(scores, k, per_model_k):
    counts, ranks = defaultdict(int), defaultdict(list)
    for row in scores:
        order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:per_model_k]
        for position, index in enumerate(order):
            counts[index] += 1
            ranks[index].append(position)
    pooled = sorted(counts, key=lambda i: (-counts[i], np.mean(ranks[i]), i))[:k]
    return pooled, [counts[i] for i in pooled]


@pytest.mark.parametrize("seed", range(4))
def test_equals_naive_port_on_tie_heavy_scores(seed):
    gen = np.random.default_rng(seed)
    scores = gen.integers(0, 6, size=(7, 60)).astype(float)  # many equal scores inside and across models
    result = select_corner_cases(torch.from_numpy(scores), k=12, per_model_k=9)
    indices, counts = naive_select(scores, 12, 9)
    assert result.indices.tolist() == indices and result.counts.tolist() == counts
    assert sorted(result.kept.tolist() + result.indices.tolist()) == list(range(60))
    assert result.num_models == 7 and result.num_samples == 60 and result.tie_break == TIE_BREAK


def test_tie_break_count_then_mean_rank_then_index():
    scores = torch.tensor([
        [9.0, 8.0, 7.0, 0.0, 0.0, 6.0],
        [0.0, 9.0, 0.0, 8.0, 7.0, 6.0],
        [9.0, 0.0, 0.0, 7.0, 8.0, 0.0],
    ])
    result = select_corner_cases(scores, k=6, per_model_k=3)
    # counts: 0 -> 2 (ranks 0, 0), 1 -> 2 (1, 0), 3 -> 2 (1, 2), 4 -> 2 (2, 1), 2 -> 1 (2)
    assert result.indices.tolist() == [0, 1, 3, 4, 2]
    assert result.counts.tolist() == [2, 2, 2, 2, 1]
    assert result.mean_rank.tolist() == [0.0, 0.5, 1.5, 1.5, 2.0]
    assert result.kept.tolist() == [5]


def test_per_model_lists_are_descending_with_lowest_index_and_nan_last():
    scores = torch.tensor([[1.0, float("nan"), 3.0, 3.0, -float("inf")]])
    assert top_k_per_model(scores, 5).tolist() == [[2, 3, 0, 4, 1]]


def test_one_model_vector_and_default_per_model_k():
    scores = torch.arange(10.0)
    result = select_corner_cases(scores, k=3)
    assert result.indices.tolist() == [9, 8, 7] and result.per_model_k == 3 and result.kept.tolist() == list(range(7))


@pytest.mark.parametrize("kwargs, message", [
    ({"k": 0}, r"k must be an integer in \[1, 10\]"),
    ({"k": 11}, r"k must be an integer in \[1, 10\]"),
    ({"k": 2, "per_model_k": 20}, r"per_model_k must be an integer in \[1, 10\]"),
])
def test_bad_counts_are_usage_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        select_corner_cases(torch.zeros(2, 10), **kwargs)
    with pytest.raises(UsageError, match="scores must be"):
        select_corner_cases(torch.zeros(2, 0), k=1)
