"""The exported detector: scriptable, saved, loaded in a fresh process without rtool, same decisions."""
import os
import subprocess
import sys

import torch
from torch import nn

from rtool.detect import ConductanceSettings, DetectorSettings, detector_scores, fit_detector, layer_conductance
from rtool.detect.export import export_detector


def test_export_roundtrip(tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(5, 3)).eval()
    x = torch.randn(30, 1, 6, 6)
    cond = layer_conductance(model, x, ConductanceSettings("1"))
    wrong = torch.arange(30) % 3 == 0
    det = fit_detector(cond.values, wrong, DetectorSettings(hidden=(8,), epochs=2))
    scores = detector_scores(det, cond.values)
    threshold = float(scores.median())
    scripted = export_detector(model, "1", det, threshold, torch.zeros(1, 6, 6))
    pred, score, accept = scripted(x)
    assert torch.equal(pred, model(x).argmax(1))
    torch.testing.assert_close(score, scores)
    assert torch.equal(accept, scores <= threshold)
    path = tmp_path / "detector.pt"
    scripted.save(str(path))
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys, torch; m = torch.jit.load(sys.argv[1]); x = torch.load(sys.argv[2]); "
            "p, s, a = m(x); torch.save((p, s, a), sys.argv[3]); "
            "assert 'rtool' not in sys.modules")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
                   check=True, cwd=tmp_path, env=env, timeout=120)
    p2, s2, a2 = torch.load(tmp_path / "out.pt")
    assert torch.equal(p2, pred) and torch.equal(s2, score) and torch.equal(a2, accept)


def test_export_errors():
    import pytest

    from rtool.errors import UsageError

    model = nn.Sequential(nn.Conv2d(1, 5, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3))
    det = fit_detector(torch.randn(4, 5), [0, 1, 0, 1], DetectorSettings(hidden=(2,), epochs=1))
    with pytest.raises(UsageError, match="closed form"):
        export_detector(model, "0", det, 0.5, torch.zeros(1, 6, 6), method="closed_form")
    with pytest.raises(UsageError, match="not found"):
        export_detector(model, "9", det, 0.5, torch.zeros(1, 6, 6))
    other = fit_detector(torch.randn(4, 7), [0, 1, 0, 1], DetectorSettings(hidden=(2,), epochs=1))
    with pytest.raises(UsageError, match="expects 7 features"):
        export_detector(model, "1", other, 0.5, torch.zeros(1, 6, 6))


class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 36, 3)

    def forward(self, x):
        return self.head((self.conv(x) + x).flatten(1))


def run_fresh(path, x, tmp_path):
    """The scripted module loaded and run in a fresh process without rtool (gradients on, as by default)."""
    torch.save(x, tmp_path / "x.pt")
    code = ("import sys, torch; m = torch.jit.load(sys.argv[1]); x = torch.load(sys.argv[2]); "
            "torch.save(m(x), sys.argv[3]); assert 'rtool' not in sys.modules")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
                   check=True, cwd=tmp_path, env=env, timeout=120)
    return torch.load(tmp_path / "out.pt")


def test_integrated_export_matches_layer_conductance(tmp_path):
    """A layer without the closed form: the module integrates the path itself, with the fitted method."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(54, 3)).eval()
    x = torch.randn(20, 1, 6, 6)
    cond = layer_conductance(model, x, ConductanceSettings("3", n_steps=3))
    assert cond.method == "right"
    det = fit_detector(cond.values, torch.arange(20) % 4 == 0, DetectorSettings(hidden=(8,), epochs=2))
    scores = detector_scores(det, cond.values)
    threshold = float(scores.median())
    scripted = export_detector(model, "3", det, threshold, torch.zeros(1, 6, 6), method="right", n_steps=3)
    pred, score, accept = scripted(x)
    assert torch.equal(pred, model(x).argmax(1))
    torch.testing.assert_close(score, scores)
    assert torch.equal(accept, scores <= threshold)
    scripted.save(str(tmp_path / "integrated.pt"))
    p2, s2, a2 = run_fresh(tmp_path / "integrated.pt", x, tmp_path)
    assert torch.equal(p2, pred) and torch.equal(s2, score) and torch.equal(a2, accept)


def test_a_skip_around_the_layer_cannot_be_cut():
    import pytest

    from rtool.errors import UsageError

    det = fit_detector(torch.randn(4, 4), [0, 1, 0, 1], DetectorSettings(hidden=(2,), epochs=1))
    with pytest.raises(UsageError, match="skip connection"):
        export_detector(Skip().eval(), "conv", det, 0.5, torch.zeros(1, 6, 6))
