"""A fitted conductance detector as one TorchScript-able module: images -> (prediction, score, accept).

Only the closed-form case is exported (the layer feeds global average pooling and the Linear head): the model is
re-traced by `torch.fx` to also return the layer's output, and the baseline's pooled activation is stored as a
buffer, so one forward pass gives the prediction, the conductance features and the MLP's P(wrong).
"""
from __future__ import annotations

import torch
from torch import nn

from rtool.detect.conductance import _StopAt, closed_form_head
from rtool.detect.detector import MLPDetector
from rtool.errors import UsageError
from rtool.models.layers import get_layer, normalize_layer_path


def _with_layer_output(model: nn.Module, layer: str) -> torch.fx.GraphModule:
    tracer = _StopAt(layer)
    graph = tracer.trace(model)
    (node,) = [n for n in graph.nodes if n.op == "call_module" and n.target == layer]
    output = next(n for n in graph.nodes if n.op == "output")
    logits = output.args[0]
    output.args = ((logits, node),)
    return torch.fx.GraphModule(model, graph)


class DeployedDetector(nn.Module):
    """forward(images) -> (prediction (N,) int64, score = P(wrong) (N,), accept (N,) bool: score <= threshold)."""

    def __init__(self, trunk: torch.fx.GraphModule, head_weight: torch.Tensor, baseline_pooled: torch.Tensor,
                 detector: MLPDetector, threshold: float) -> None:
        super().__init__()
        self.trunk = trunk
        self.register_buffer("head_weight", head_weight.detach().clone())
        self.register_buffer("baseline_pooled", baseline_pooled.detach().clone())
        self.detector = detector
        self.threshold = float(threshold)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, acts = self.trunk(images)
        prediction = logits.argmax(1)
        spatial = acts.shape[2] * acts.shape[3]
        pooled = acts.flatten(2).mean(2)
        cond = self.head_weight[prediction].to(pooled.dtype) * (pooled - self.baseline_pooled) / spatial
        score = self.detector(cond.float())
        return prediction, score, score <= self.threshold


def export_detector(model: nn.Module, layer: str, detector: MLPDetector, threshold: float,
                    baseline: torch.Tensor) -> torch.jit.ScriptModule:
    """The scripted detector for `model`'s `layer` (closed-form layers only); `baseline` is one input (C, H, W)."""
    name = normalize_layer_path(layer)
    get_layer(model, name)
    head = closed_form_head(model, name)
    if head is None:
        raise UsageError(f"export of layer {name!r}: expected a layer that feeds only global average pooling and "
                         f"the Linear head (the closed form); other layers are not exportable yet")
    model = model.eval()
    trunk = _with_layer_output(model, name).eval()
    with torch.no_grad():
        _, base_acts = trunk(baseline[None].to(head.weight))
    if base_acts.shape[1] != detector.shift.numel():
        raise UsageError(f"detector expects {detector.shift.numel()} features; layer {name!r} has "
                         f"{base_acts.shape[1]} channels")
    module = DeployedDetector(trunk, head.weight, base_acts.flatten(2).mean(2)[0], detector.eval(), threshold)
    return torch.jit.script(module.eval())
