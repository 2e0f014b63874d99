"""Mutation operators, the accept rule and LCR on a tiny CNN, checked against deep-copied mutants."""
import copy

import pytest
import torch
from torch import nn

from rtool.detect.mutation import (MutationSettings, accepted_mutants, candidate_seed, conv_layers,
                                   label_change_rate, mutant_parameters)
from rtool.errors import UsageError


def tiny_cnn():
    torch.manual_seed(11)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 4),
    ).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_cnn()


@pytest.fixture(scope="module")
def data(model):
    x = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:8] = (y[:8] + 1) % 4  # the original model is 80 % accurate on this "validation set"
    return x, y


def copied_mutant(model, changed):
    clone = copy.deepcopy(model)
    params = dict(clone.named_parameters())
    with torch.no_grad():
        for name, value in changed.items():
            params[name].copy_(value)
    return clone


@pytest.mark.parametrize("operator", ["NAI", "GF", "WS", "NS"])
def test_operators_are_seeded_and_change_whole_filters(model, operator):
    gamma = 0.25 if operator == "NS" else 0.1  # 20 filters: 2 per mutant; NS rotates 2 of 8 and 3 of 12
    a = mutant_parameters(model, operator, gamma, seed=3)
    b = mutant_parameters(model, operator, gamma, seed=3)
    c = mutant_parameters(model, operator, gamma, seed=4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a.keys() != c.keys() or any(not torch.equal(a[k], c[k]) for k in a)
    params = dict(model.named_parameters())
    changed_filters = 0
    for name, new in a.items():
        old = params[name].detach()
        assert new.shape == old.shape and name.endswith(("weight", "bias"))
        if name.endswith("weight"):
            diff = (new != old).flatten(1).any(1)
            changed_filters += int(diff.sum())
            for f in diff.nonzero()[:, 0].tolist():
                if operator == "NAI":
                    assert torch.equal(new[f], -old[f])
                elif operator == "WS":
                    assert torch.equal(new[f].flatten().sort().values, old[f].flatten().sort().values)
                elif operator == "NS":
                    assert any(torch.equal(new[f], old[g]) for g in range(old.shape[0]) if g != f)
    assert changed_filters == (5 if operator == "NS" else 2)


def test_gf_samples_from_layer_statistics():
    conv = nn.Conv2d(3, 400, 2)
    model = nn.Sequential(conv)
    new = mutant_parameters(model, "GF", 0.5, seed=0)["0.weight"]
    w = conv.weight.detach()
    picked = (new != w).flatten(1).any(1)
    assert int(picked.sum()) == 200
    z = (new[picked] - w.mean(0)) / w.std(0, correction=0)
    assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05


def test_accept_rule_and_lcr_equal_deep_copies(model, data):
    x, y = data
    settings = MutationSettings("NAI", gamma=0.1, target_mutants=6, mutant_batch=4, input_batch=16, seed=2)
    mutants = accepted_mutants(model, x, y, settings)
    assert len(mutants.seeds) == 6 and mutants.candidates_drawn >= 6
    assert mutants.original_accuracy == pytest.approx(0.8)
    expected_seeds, expected_accs, index = [], [], 0
    while len(expected_seeds) < 6:  # the accept rule replayed one deep copy at a time
        s = candidate_seed(2, index)
        index += 1
        with torch.no_grad():
            acc = (copied_mutant(model, mutant_parameters(model, "NAI", 0.1, s))(x).argmax(1) == y).double().mean()
        if acc >= 0.9 * 0.8:
            expected_seeds.append(s)
            expected_accs.append(acc.item())
    assert mutants.seeds == tuple(expected_seeds)
    assert mutants.accuracies == pytest.approx(expected_accs)
    assert all(a >= 0.9 * mutants.original_accuracy for a in mutants.accuracies)

    result = label_change_rate(model, mutants, x)
    with torch.no_grad():
        original = model(x).argmax(1)
        loop = torch.stack([copied_mutant(model, mutant_parameters(model, "NAI", 0.1, s))(x).argmax(1)
                            for s in mutants.seeds])
    assert torch.equal(result.original, original)
    assert torch.equal(result.mutant_predictions, loop)
    torch.testing.assert_close(result.lcr, (loop != original).double().mean(0))
    assert ((result.lcr * 6).round() == result.lcr * 6).all() and (0 <= result.lcr).all() and (result.lcr <= 1).all()


def test_no_model_copy_and_mode_restored(model, data):
    x, y = data
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    accepted_mutants(model, x, y, MutationSettings("WS", gamma=0.1, target_mutants=2, accept_ratio=0.0))
    assert model.training
    model.eval()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_one_line_errors(model, data):
    x, y = data
    with pytest.raises(UsageError, match="operator"):
        MutationSettings("XYZ")
    with pytest.raises(UsageError, match="gamma"):
        MutationSettings(gamma=0)
    with pytest.raises(UsageError, match="larger gamma"):
        mutant_parameters(model, "NAI", 0.01, 0)
    with pytest.raises(UsageError, match="accept rule"):
        accepted_mutants(model, x, y, MutationSettings("GF", gamma=1.0, target_mutants=3, accept_ratio=1.0,
                                                       max_candidates=3))
    with pytest.raises(UsageError, match="no convolution"):
        mutant_parameters(nn.Linear(3, 2), "NAI", 0.5, 0)
    with pytest.raises(UsageError, match="labels"):
        accepted_mutants(model, x, y[:3], MutationSettings(gamma=0.1))
    assert [n for n, _ in conv_layers(model)] == ["0", "4"]


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True))
        self.conv_a = nn.Conv2d(6, 6, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv2d(6, 6, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = self.stem(x)
        out = self.conv_b(self.relu(self.conv_a(x)))
        out += x  # in place on the block input, which lies in the shared prefix
        out = torch.relu_(out)
        return self.fc(self.drop(out.mean((2, 3))))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        if y.shape[-1] > 3:  # control flow on a shape: fx cannot trace it, vmap can run it
            y = y * 2
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("factory", [Residual, Untraceable])
def test_shared_prefix_and_fallback_equal_deep_copies(factory):
    from rtool.detect import mutation

    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(9, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    settings = MutationSettings("NAI", gamma=0.25, target_mutants=6, accept_ratio=0.0, mutant_batch=4, input_batch=5)
    mutants = accepted_mutants(model, x, y, settings)
    result = label_change_rate(model, mutants, x)
    with torch.no_grad():
        loop = torch.stack([copied_mutant(model, mutant_parameters(model, "NAI", 0.25, s))(x).argmax(1)
                            for s in mutants.seeds])
        assert torch.equal(result.mutant_predictions, loop)
        graph = mutation._graph_of(model)
        if factory is Untraceable:
            assert graph is None
            return
        late = {"conv_b.weight": -model.conv_b.weight}
        assert graph.cut(late) > graph.cut({"stem.0.weight": model.stem[0].weight}) > 0
        ours = graph.logits([late, {}], x)
        torch.testing.assert_close(ours[0], copied_mutant(model, late)(x))
        torch.testing.assert_close(ours[1], model(x))
