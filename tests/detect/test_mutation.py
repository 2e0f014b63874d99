"""Mutation operators, the accept rule and LCR on a tiny CNN, checked against deep-copied mutants."""
import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from rtool.detect.mutation import (MutantSet, MutationSettings, accepted_mutants, candidate_seed, conv_layers,
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


# --- the CPU propagation (sparse channels, folded affine maps, certified decisions) ----------------------------------

def loop_predictions(model, operator, gamma, seeds, x):
    with torch.no_grad():
        return torch.stack([copied_mutant(model, mutant_parameters(model, operator, gamma, s))(x).argmax(1)
                            for s in seeds])


def mutant_set(operator, gamma, count, input_batch, seed=0):
    settings = MutationSettings(operator, gamma=gamma, target_mutants=count, input_batch=input_batch, seed=seed)
    seeds = tuple(candidate_seed(seed, i) for i in range(count))
    return MutantSet(settings=settings, seeds=seeds, accuracies=(1.0,) * count, original_accuracy=1.0,
                     candidates_drawn=count)


class SmallResNet(nn.Module):
    """torchvision's BasicBlock twice (one with a strided 1x1 downsample), a padded max pool stem, an adaptive
    average pool and a Linear -> Dropout -> Linear head that folds into one affine map."""

    def __init__(self):
        from torchvision.models.resnet import BasicBlock

        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        down = nn.Sequential(nn.Conv2d(8, 12, 1, stride=2, bias=False), nn.BatchNorm2d(12))
        self.blocks = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 12, stride=2, downsample=down))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(12, 16), nn.Dropout(0.2), nn.Linear(16, 5))

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class FunctionalNet(nn.Module):
    """Functional pooling and a flatten method; Linear -> ReLU -> Linear does not fold."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 8, 3, padding=1, padding_mode="reflect")
        self.fc1, self.fc2 = nn.Linear(8 * 4 * 4, 20), nn.Linear(20, 4)

    def forward(self, x):
        x = F.avg_pool2d(torch.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.tanh(self.conv2(x)), 2).flatten(1)
        return self.fc2(torch.relu(self.fc1(x)))


def random_bn_statistics(model):
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model


@pytest.fixture(scope="module")
def corner():
    from rtool.models import CornerConvNet

    torch.manual_seed(0)
    return CornerConvNet().eval(), torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def others():
    torch.manual_seed(1)
    resnet = random_bn_statistics(SmallResNet()).eval()
    functional = FunctionalNet().eval()
    return {"resnet": (resnet, torch.randn(24, 3, 16, 16, generator=torch.Generator().manual_seed(4))),
            "functional": (functional, torch.randn(24, 1, 16, 16, generator=torch.Generator().manual_seed(6)))}


@pytest.mark.parametrize("operator,gamma,seed", [("NAI", 0.03, 0), ("NAI", 0.1, 1), ("GF", 0.03, 2), ("WS", 0.05, 3),
                                                 ("NS", 0.1, 4)])
def test_propagation_equals_deep_copies_on_corner_convnet(corner, operator, gamma, seed):
    from rtool.detect import mutation

    model, x = corner
    assert mutation._engine(model, x)[1] is not None  # the propagation runs, fc2 o fc1 folded
    mutants = mutant_set(operator, gamma, 5, input_batch=64, seed=seed)
    result = label_change_rate(model, mutants, x)
    loop = loop_predictions(model, operator, gamma, mutants.seeds, x)
    with torch.no_grad():
        original = model(x).argmax(1)
    assert torch.equal(result.original, original)
    assert torch.equal(result.mutant_predictions, loop)
    assert torch.equal(result.lcr, (loop != original).double().mean(0))
    assert result.rechecked < 0.2


@pytest.mark.parametrize("name", ["resnet", "functional"])
@pytest.mark.parametrize("operator,gamma", [("NAI", 0.1), ("GF", 0.1), ("WS", 0.1), ("NS", 0.3)])
def test_propagation_equals_deep_copies_on_other_models(others, name, operator, gamma):
    from rtool.detect import mutation

    model, x = others[name]
    assert mutation._engine(model, x)[1] is not None
    mutants = mutant_set(operator, gamma, 4, input_batch=10, seed=5)  # batches of 10, 10 and 4 inputs
    result = label_change_rate(model, mutants, x)
    loop = torch.cat([loop_predictions(model, operator, gamma, mutants.seeds, x[i:i + 10]) for i in (0, 10, 20)], 1)
    assert torch.equal(result.mutant_predictions, loop)
    assert result.rechecked < 0.5


def fast_and_dense_logits(model, operator, gamma, seeds, x):
    from rtool.detect import mutation

    graph, propagation = mutation._engine(model, x)
    params = [mutant_parameters(model, operator, gamma, s) for s in seeds]
    with torch.no_grad():
        _, results = propagation.fast_logits([propagation.plan(p) for p in params], x)
        return [(result, graph._logits_one_by_one([p], x)[0]) for p, result in zip(params, results)]


@pytest.mark.parametrize("case", ["corner", "resnet", "functional"])
def test_fast_logits_close_to_dense(corner, others, case):
    model, x = corner if case == "corner" else others[case]
    pairs = fast_and_dense_logits(model, "GF", 0.1, [candidate_seed(9, i) for i in range(4)], x)
    for result, dense in pairs:
        assert result is not None and result != "clean"
        fast, scale = result
        # max |fast - dense| / scale measured: 1.6e-9 (corner, also on the LCR bench), 3.5e-8 (resnet), 1.0e-7
        # (functional); the certificate needs it well below _TAU = 1e-5
        assert ((fast - dense).abs().amax(1) <= 1e-6 * scale).all()
        torch.testing.assert_close(fast, dense, rtol=1e-4, atol=1e-5)


def test_forced_rechecks_give_the_same_predictions(corner, others, monkeypatch):
    from rtool.detect import mutation

    monkeypatch.setattr(mutation, "_TAU", 1e9)  # no decision is certified: all go to the dense path
    for model, x in (corner, others["resnet"]):
        mutants = mutant_set("NAI", 0.1, 3, input_batch=x.shape[0])
        result = label_change_rate(model, mutants, x)
        assert torch.equal(result.mutant_predictions, loop_predictions(model, "NAI", 0.1, mutants.seeds, x))
        assert result.rechecked == 1.0


def test_memory_budget_splits_the_clean_pass(corner, monkeypatch):
    from rtool.detect import mutation

    model, x = corner
    mutants = mutant_set("NAI", 0.1, 3, input_batch=x.shape[0])
    expected = label_change_rate(model, mutants, x)
    propagation = mutation._engine(model, x)[1]
    assert propagation is not None and propagation.bytes_per_row > 0
    monkeypatch.setattr(mutation, "_CLEAN_VALUES_BUDGET", 7 * propagation.bytes_per_row)  # passes of 7 rows
    rows, fast_logits = [], mutation._Propagation.fast_logits
    monkeypatch.setattr(mutation._Propagation, "fast_logits",
                        lambda self, plans, inputs, group: rows.append(inputs.shape[0]) or fast_logits(
                            self, plans, inputs, group))
    split = label_change_rate(model, mutants, x)
    assert rows and max(rows) == 7 and sum(rows) == x.shape[0]
    assert torch.equal(split.lcr, expected.lcr) and torch.equal(split.original, expected.original)


@pytest.mark.parametrize("case", ["corner", "resnet", "functional"])
def test_rechecks_of_32_rows_give_the_whole_batch_logits(corner, others, case):
    """What the padding of rechecks to _RECHECK_ROWS rows relies on (fewer rows change a linear layer's last bits)."""
    from rtool.detect import mutation

    model, x = corner if case == "corner" else others[case]
    x = torch.cat([x] * (64 // x.shape[0] + 1))[:64]
    graph = mutation._graph_of(model)
    params = mutant_parameters(model, "GF", 0.1, 5)
    with torch.no_grad():
        full = graph._logits_one_by_one([params], x)[0]
        for flagged in ([3], [0, 40, 63], list(range(20, 60))):
            rows = mutation._padded(torch.tensor(flagged), x.shape[0])
            assert rows[:len(flagged)].tolist() == flagged and len(rows) == max(len(flagged), 32)
            assert torch.equal(graph._logits_one_by_one([params], x[rows])[0], full[rows])


class SoftmaxOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3))).softmax(1)


class WritesReadLater(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3), nn.Linear(4, 3)

    def forward(self, x):
        y = self.conv(x)
        z = torch.relu_(y)  # eager: y is z afterwards
        return self.fc((y + z).mean((2, 3)))


@pytest.mark.parametrize("factory", [SoftmaxOut, WritesReadLater])
def test_models_the_propagation_declines_run_the_dense_path(factory):
    from rtool.detect import mutation

    torch.manual_seed(2)
    model = factory().eval()
    x = torch.randn(12, 1, 6, 6, generator=torch.Generator().manual_seed(8))
    graph, propagation = mutation._engine(model, x)
    assert graph is not None and propagation is None
    mutants = mutant_set("NAI", 0.5, 4, input_batch=12)
    result = label_change_rate(model, mutants, x)
    assert torch.equal(result.mutant_predictions, loop_predictions(model, "NAI", 0.5, mutants.seeds, x))
    assert result.rechecked == 0.0
