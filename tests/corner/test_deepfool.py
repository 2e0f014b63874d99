"""Batched DeepFool (rtool.corner.deepfool) vs the affine closed form and a per-sample LTS4-style loop."""
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from rtool.corner.deepfool import DeepFoolConfig, deepfool_batch, robustness_radius, summarize_radii
from rtool.errors import UsageError


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and do not stall when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cnn(seed=0, classes=10, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(6 * 6 * 6, 16), nn.Tanh(), nn.Linear(16, classes),
    ).double()


def images(n, seed=1, dtype=torch.float64):
    return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def lts4_port(net, image, num_classes=10, overshoot=0.02, max_iter=50, step_eps=1e-4):
    """The LTS4 Python DeepFool, one sample, one backward pass per candidate, written out plainly."""
    x = image[None].clone().requires_grad_(True)
    fs = net(x)
    order = fs.detach()[0].argsort(descending=True)[:num_classes]
    label = int(order[0])
    r_tot = torch.zeros_like(image)
    loop_i, k_i = 0, label
    while k_i == label and loop_i < max_iter:
        pert, w = float("inf"), None
        grad_orig = torch.autograd.grad(fs[0, order[0]], x, retain_graph=True)[0]
        for k in range(1, len(order)):
            cur_grad = torch.autograd.grad(fs[0, order[k]], x, retain_graph=True)[0]
            w_k = cur_grad - grad_orig
            f_k = (fs[0, order[k]] - fs[0, order[0]]).detach()
            pert_k = float(f_k.abs() / w_k.norm())
            if pert_k < pert:
                pert, w = pert_k, w_k
        r_i = (pert + step_eps) * w / w.norm()
        r_tot = r_tot + r_i[0]
        x = (image + (1 + overshoot) * r_tot)[None].requires_grad_(True)
        fs = net(x)
        k_i = int(fs.detach()[0].argmax())
        loop_i += 1
    return (1 + overshoot) * r_tot, loop_i, label, k_i


def test_affine_classifier_closed_form():
    torch.manual_seed(3)
    dims, classes = 20, 5
    model = nn.Sequential(nn.Flatten(), nn.Linear(dims, classes)).double()
    x = torch.randn(8, 1, 4, 5, dtype=torch.float64)
    result = deepfool_batch(model, x, return_perturbations=True)
    W, b = model[1].weight.detach(), model[1].bias.detach()
    for i in range(x.shape[0]):
        f = W @ x[i].flatten() + b
        k_hat = int(f.argmax())
        others = [k for k in f.argsort(descending=True).tolist() if k != k_hat]
        w = W[others] - W[k_hat]
        fp = f[others] - f[k_hat]
        l = int((fp.abs() / w.norm(dim=1)).argmin())
        w_l, f_l = w[l], fp[l]
        expected = 1.02 * (f_l.abs() / w_l.norm() ** 2 + 1e-4 / w_l.norm()) * w_l
        assert result.iterations[i] == 1 and bool(result.converged[i])
        assert result.label[i] == k_hat and result.final_label[i] != k_hat
        torch.testing.assert_close(result.perturbation[i].flatten(), expected, rtol=1e-12, atol=1e-14)
        assert result.radius[i].item() == pytest.approx(float(1.02 * (f_l.abs() / w_l.norm() + 1e-4)), rel=1e-12)
        assert result.rho[i].item() == pytest.approx(result.radius[i].item() / float(x[i].norm()), rel=1e-12)


def test_batched_equals_per_sample_lts4_loop():
    net = tiny_cnn()
    x = images(8)
    result = deepfool_batch(net, x, return_perturbations=True)
    assert result.converged.all()
    for i in range(x.shape[0]):
        r_hat, loops, label, final = lts4_port(net, x[i])
        got = (result.iterations[i].item(), result.label[i].item(), result.final_label[i].item())
        assert got == (loops, label, final)
        torch.testing.assert_close(result.perturbation[i], r_hat, rtol=1e-6, atol=1e-9)
        assert result.radius[i].item() == pytest.approx(float(r_hat.norm()), rel=1e-6)
    assert result.iterations.max() > 1  # the tiny net needs more than the linear step somewhere


def test_few_candidates_and_iteration_cap_match_the_loop():
    net = tiny_cnn(seed=5)
    x = images(6, seed=4)
    cfg = DeepFoolConfig(num_candidates=3, max_iter=1)
    result = deepfool_batch(net, x, cfg, return_perturbations=True)
    for i in range(x.shape[0]):
        r_hat, loops, label, final = lts4_port(net, x[i], num_classes=3, max_iter=1)
        assert result.iterations[i] == loops == 1
        assert bool(result.converged[i]) == (final != label) and result.final_label[i] == final
        torch.testing.assert_close(result.perturbation[i], r_hat, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed, count", [(2, 9), (0, 24)])
def test_compaction_does_not_change_results(seed, count):
    # (0, 24): after step 1 one sample finishes (its rows ride along in the kept graph), after step 2 most do
    # (a fresh forward over the survivors): both ways of compacting are exercised.
    net = tiny_cnn(seed=seed)
    x = images(count, seed=7 if seed == 2 else seed)
    together = deepfool_batch(net, x, return_perturbations=True)
    assert len(set(together.iterations.tolist())) > 1  # samples really leave the batch at different times
    for i in range(x.shape[0]):
        alone = deepfool_batch(net, x[i:i + 1], return_perturbations=True)
        assert alone.iterations.item() == together.iterations[i].item()
        assert alone.final_label.item() == together.final_label[i].item()
        torch.testing.assert_close(alone.perturbation[0], together.perturbation[i], rtol=1e-9, atol=1e-12)


def test_clip_mode_stays_in_the_box():
    net = tiny_cnn(seed=4)
    x = images(10, seed=3)
    result = deepfool_batch(net, x, DeepFoolConfig(mode="clip"), return_perturbations=True)
    adv = x + result.perturbation
    assert adv.min() >= 0.0 and adv.max() <= 1.0
    assert result.converged.any()
    with torch.no_grad():
        flipped = net(adv).argmax(1) != result.label
    assert torch.equal(flipped, result.converged)
    torch.testing.assert_close(result.radius, result.perturbation.flatten(1).norm(dim=1))


def test_stalled_sample_stops_unconverged():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).double()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64))
    result = deepfool_batch(model, torch.rand(2, 1, 2, 2, dtype=torch.float64))
    assert not result.converged.any() and result.iterations.tolist() == [0, 0]
    assert result.radius.tolist() == [0.0, 0.0] and result.final_label.tolist() == [1, 1]


def test_eval_mode_during_the_run_and_restored_after():
    net = tiny_cnn(seed=6, dropout=0.5)
    net.train()
    x = images(4, seed=8)
    first = deepfool_batch(net, x)
    second = deepfool_batch(net, x)
    assert net.training
    torch.testing.assert_close(first.radius, second.radius, rtol=0, atol=0)  # dropout was off


def test_train_mode_quirk():
    net = tiny_cnn(seed=2)  # dropout p=0: train mode is deterministic, so it must equal eval mode
    x = images(9, seed=7)
    quirk = deepfool_batch(net, x, DeepFoolConfig(train_mode=True), return_perturbations=True)
    plain = deepfool_batch(net, x, return_perturbations=True)
    assert len(set(plain.iterations.tolist())) > 1  # the kept-graph path is exercised
    assert torch.equal(quirk.iterations, plain.iterations) and torch.equal(quirk.final_label, plain.final_label)
    torch.testing.assert_close(quirk.perturbation, plain.perturbation, rtol=1e-9, atol=1e-12)
    noisy = tiny_cnn(seed=2, dropout=0.5)
    noisy.eval()
    torch.manual_seed(0)
    first = deepfool_batch(noisy, x, DeepFoolConfig(train_mode=True))
    assert not noisy.training
    torch.manual_seed(1)
    second = deepfool_batch(noisy, x, DeepFoolConfig(train_mode=True))
    assert not torch.equal(first.radius, second.radius)  # dropout was active
    with pytest.raises(UsageError, match="batch-norm layers \\(BatchNorm2d\\)"):
        deepfool_batch(nn.Sequential(nn.BatchNorm2d(1), nn.Flatten(), nn.Linear(144, 3)).double(), x,
                       DeepFoolConfig(train_mode=True))


def test_dataset_chunks_equal_one_batch_and_summary():
    net = tiny_cnn(seed=1)
    x = images(7, seed=9)
    whole = deepfool_batch(net, x)
    for data in (x, TensorDataset(x, torch.zeros(7, dtype=torch.long))):
        chunked = robustness_radius(net, data, batch_size=3, quiet=True)
        torch.testing.assert_close(chunked.radius, whole.radius, rtol=1e-9, atol=1e-12)
        assert torch.equal(chunked.iterations, whole.iterations)
    s = summarize_radii(whole)
    columns = whole.columns()
    assert list(columns)[:2] == ["rob", "pred_y"] and all(len(v) == 7 for v in columns.values())
    assert s.count == 7
    assert s.mean_radius == pytest.approx(float(whole.radius.mean()))
    assert s.rho_adv == pytest.approx(float((whole.radius / x.flatten(1).norm(dim=1).double()).mean()))
    assert s.median_radius == pytest.approx(float(whole.radius.double().quantile(0.5)))
    assert s.converged_fraction == pytest.approx(float(whole.converged.double().mean()))


def test_float32_and_empty_batch():
    net = tiny_cnn(seed=0).float()
    x = images(5, dtype=torch.float32)
    result = deepfool_batch(net, x)
    assert result.radius.dtype == torch.float64 and result.radius.gt(0).all()
    empty = deepfool_batch(net, x[:0])
    assert len(empty) == 0 and empty.summary().count == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "box"}, "DeepFool mode 'box': expected one of lts4, clip"),
    ({"num_candidates": 1}, "num_candidates 1: expected an integer >= 2"),
    ({"max_iter": -1}, "max_iter -1"),
    ({"overshoot": -0.1}, "overshoot -0.1"),
    ({"clip_min": 1.0, "clip_max": 0.0}, "clip range"),
])
def test_bad_config_is_one_line(kwargs, message):
    with pytest.raises(UsageError, match=message):
        DeepFoolConfig(**kwargs)


def test_model_without_logits_is_one_line():
    model = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(UsageError, match=r"returned \(2, 2, 10, 10\)"):
        deepfool_batch(model, torch.rand(2, 1, 12, 12))
    with pytest.raises(UsageError, match="expected float32 or float64"):
        deepfool_batch(model, torch.rand(2, 1, 12, 12).half())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_equals_cpu():
    net = tiny_cnn(seed=3)
    x = images(16, seed=5)
    cpu = deepfool_batch(net, x)
    gpu = deepfool_batch(net.cuda(), x.cuda())
    assert torch.equal(gpu.iterations, cpu.iterations) and torch.equal(gpu.final_label, cpu.final_label)
    torch.testing.assert_close(gpu.radius, cpu.radius, rtol=1e-6, atol=1e-9)
