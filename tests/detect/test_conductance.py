"""Layer conductance: equal to Captum's LayerConductance, the closed form equal to the integrated sums."""
import pytest
import torch
from torch import nn

from rtool.detect import ConductanceSettings, closed_form_head, layer_conductance
from rtool.errors import UsageError

captum_attr = pytest.importorskip("captum.attr")


class TinyCNN(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1, stride=2)
        self.act2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        y = self.act2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.pool(y), 1))


@pytest.fixture
def model():
    torch.manual_seed(3)
    m = TinyCNN().double()
    with torch.no_grad():  # non-trivial batch-norm statistics
        m.bn1.running_mean.uniform_(-0.2, 0.2)
        m.bn1.running_var.uniform_(0.5, 1.5)
    return m.eval()


@pytest.fixture
def inputs():
    return torch.randn(5, 2, 7, 7, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


def captum_values(model, layer, x, method, n_steps, baseline=0.0):
    pred = model(x).argmax(1)
    attr = captum_attr.LayerConductance(model, getattr(model, layer)).attribute(
        x, baselines=baseline, target=pred, n_steps=n_steps, method=method)
    return attr.flatten(2).mean(2) if attr.dim() > 2 else attr


@pytest.mark.parametrize("method", ["riemann_trapezoid", "gausslegendre", "riemann_right"])
@pytest.mark.parametrize("layer", ["conv1", "bn1", "conv2"])
def test_equals_captum(model, inputs, layer, method):
    ours = layer_conductance(model, inputs, ConductanceSettings(layer, n_steps=7, method=method, max_rows=12))
    assert ours.method == method
    torch.testing.assert_close(ours.values, captum_values(model, layer, inputs, method, 7), rtol=1e-9, atol=1e-12)


def test_chunking_does_not_change_the_sum(model, inputs):
    base = layer_conductance(model, inputs, ConductanceSettings("conv1", method="right", max_rows=1000))
    for rows in (1, 4, 11):
        small = layer_conductance(model, inputs, ConductanceSettings("conv1", method="right", max_rows=rows))
        torch.testing.assert_close(small.values, base.values, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("baseline", ["zeros", "shared", "per-input"])
def test_right_sum_is_authors_formula(model, inputs, baseline):
    """sum_k grad(x_k) * (y(x_k) - y(x_{k-1})) on a_k = k/n, computed the slow way.

    A baseline shared by all inputs runs the path's start as one row; a per-input one runs it for every input.
    """
    n = 4
    layer = model.conv1
    pred = model(inputs).argmax(1)
    gen = torch.Generator().manual_seed(3)
    start = {"zeros": torch.zeros_like(inputs),
             "shared": torch.randn(1, *inputs.shape[1:], generator=gen, dtype=inputs.dtype).expand_as(inputs),
             "per-input": torch.randn(inputs.shape, generator=gen, dtype=inputs.dtype)}[baseline]
    acts, grads = [], []
    for k in range(n + 1):
        x = start + (k / n) * (inputs - start)
        store = {}
        h = layer.register_forward_hook(lambda m, a, o: store.setdefault("y", o))
        out = model(x)
        h.remove()
        g, = torch.autograd.grad(out.gather(1, pred[:, None]).sum(), store["y"])
        acts.append(store["y"].detach())
        grads.append(g)
    expect = sum(grads[k] * (acts[k] - acts[k - 1]) for k in range(1, n + 1)).flatten(2).mean(2)
    ours = layer_conductance(model, inputs, ConductanceSettings("conv1", n_steps=n, method="right"),
                             baseline=None if baseline == "zeros" else start)
    torch.testing.assert_close(ours.values, expect, rtol=1e-9, atol=1e-12)


def test_closed_form_detected_and_equal_to_integrated(model, inputs):
    assert closed_form_head(model, "act2") is model.fc
    assert closed_form_head(model, "conv2") is None  # a ReLU sits between conv2 and the pooling
    closed = layer_conductance(model, inputs, ConductanceSettings("act2"))
    assert closed.method == "closed_form"
    for method in ("right", "riemann_trapezoid"):
        integ = layer_conductance(model, inputs, ConductanceSettings("act2", n_steps=3, method=method))
        torch.testing.assert_close(closed.values, integ.values, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(closed.values, captum_values(model, "act2", inputs, "riemann_trapezoid", 3),
                               rtol=1e-9, atol=1e-12)
    # completeness: the per-channel spatial sums add up to logit(x) - logit(baseline)
    pred = closed.targets
    logit_gap = (model(inputs) - model(torch.zeros_like(inputs))).gather(1, pred[:, None])[:, 0]
    spatial = 4 * 4
    torch.testing.assert_close(closed.values.sum(1) * spatial, logit_gap, rtol=1e-9, atol=1e-12)


def test_auto_falls_back_to_right_and_baseline_is_used(model, inputs):
    res = layer_conductance(model, inputs, ConductanceSettings("conv2"))
    assert res.method == "right" and res.n_steps == 10 and res.values.shape == (5, 8)
    baseline = torch.full((2, 7, 7), 0.3, dtype=torch.float64)
    ours = layer_conductance(model, inputs, ConductanceSettings("conv2", n_steps=5, method="riemann_trapezoid"),
                             baseline=baseline)
    theirs = captum_values(model, "conv2", inputs, "riemann_trapezoid", 5, baseline=baseline[None].expand_as(inputs))
    torch.testing.assert_close(ours.values, theirs, rtol=1e-9, atol=1e-12)


def test_model_mode_restored(model, inputs):
    model.train()
    layer_conductance(model, inputs, ConductanceSettings("conv1", n_steps=2))
    assert model.training


def test_one_line_errors(model, inputs):
    with pytest.raises(UsageError, match="not found"):
        layer_conductance(model, inputs, ConductanceSettings("layer9"))
    with pytest.raises(UsageError, match="method"):
        ConductanceSettings("conv1", method="simpson")
    with pytest.raises(UsageError, match="n_steps"):
        ConductanceSettings("conv1", n_steps=0)
    with pytest.raises(UsageError, match="closed-form"):
        layer_conductance(model, inputs, ConductanceSettings("conv1", method="closed_form"))
    with pytest.raises(UsageError, match="classes in 0..4"):
        layer_conductance(model, inputs, ConductanceSettings("conv1"), targets=torch.full((5,), 7))
    with pytest.raises(UsageError, match="targets: 2 given"):
        layer_conductance(model, inputs, ConductanceSettings("conv1"), targets=torch.zeros(2))
    model.spare = nn.Conv2d(2, 2, 1)
    with pytest.raises(UsageError, match="not used"):
        layer_conductance(model, inputs, ConductanceSettings("spare"))
    with pytest.raises(UsageError, match="baseline"):
        layer_conductance(model, inputs, ConductanceSettings("conv1"), baseline=torch.zeros(3, 3))


def test_resnet18_layer4_closed_form_equals_right_sum():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=6).double().eval()
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    assert closed_form_head(model, "layer4") is model.fc and closed_form_head(model, "layer4.1.conv2") is None
    closed = layer_conductance(model, x, ConductanceSettings("layer4"))
    integ = layer_conductance(model, x, ConductanceSettings("layer4", n_steps=2, method="right", max_rows=4))
    assert closed.method == "closed_form" and integ.method == "right"
    torch.testing.assert_close(closed.values, integ.values, rtol=1e-9, atol=1e-12)
