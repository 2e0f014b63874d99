"""A fitted conductance detector as one TorchScript-able module: images -> (prediction, score, accept).

Closed form (the layer feeds global average pooling and the Linear head): the model is re-traced by `torch.fx`
to also return the layer's output, and the baseline's pooled activation is stored as a buffer, so one forward
pass gives the prediction, the conductance features and the MLP's P(wrong).
Any other layer: the model is cut by `torch.fx` at the layer into a prefix (input -> layer output) and a suffix
(layer output -> logits), and the module runs the same path sum as `layer_conductance` (the fitted method's
points, gradient at the right point for "right", at the left one for Captum's methods) with `torch.autograd.grad`
through the suffix, one path point at a time. A suffix that also reads values from before the layer (a skip
connection around it) cannot be cut there and is a UsageError.
"""
from __future__ import annotations

import torch
from torch import nn

from typing import List

from rtool.detect.conductance import _StopAt, closed_form_head, path_alphas
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


def _prefix_and_suffix(model: nn.Module, layer: str) -> tuple[torch.fx.GraphModule, torch.fx.GraphModule]:
    graph = _StopAt(layer).trace(model)
    order = list(graph.nodes)
    (node,) = [n for n in order if n.op == "call_module" and n.target == layer]
    cut = order.index(node)
    prefix, env = torch.fx.Graph(), {}
    for n in order[:cut + 1]:
        env[n] = prefix.node_copy(n, lambda x: env[x])
        env[n].type = None  # annotations copied across graphs do not resolve under TorchScript
    prefix.output(env[node])
    prefix_module = torch.fx.GraphModule(model, prefix)
    prefix_module.graph.eliminate_dead_code()
    prefix_module.recompile()
    suffix = torch.fx.Graph()
    env = {node: suffix.placeholder("acts")}
    for n in order[cut + 1:]:
        for source in n.all_input_nodes:
            if source not in env:
                if source.op != "get_attr":
                    raise UsageError(f"export of layer {layer!r}: the rest of the model also reads {source.name!r} "
                                     f"from before the layer (a skip connection around it); expected a layer "
                                     f"the rest of the model only sees through its output")
                env[source] = suffix.node_copy(source)
        env[n] = suffix.node_copy(n, lambda x: env[x])
        env[n].type = None
    return prefix_module.eval(), torch.fx.GraphModule(model, suffix).eval()


class IntegratedDeployedDetector(nn.Module):
    """forward(images) -> (prediction, score = P(wrong), accept), the conductance integrated along the path.

    Needs gradients: call it outside `torch.no_grad()` / `torch.inference_mode()` (TorchScript cannot turn
    them back on inside)."""

    def __init__(self, prefix: torch.fx.GraphModule, suffix: torch.fx.GraphModule, baseline: torch.Tensor,
                 alphas: List[float], grad_at_right: bool, detector: MLPDetector, threshold: float) -> None:
        super().__init__()
        self.prefix = prefix
        self.suffix = suffix
        self.register_buffer("baseline", baseline.detach().clone())
        self.alphas = alphas
        self.grad_at_right = grad_at_right
        self.detector = detector
        self.threshold = float(threshold)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            prediction = self.suffix(self.prefix(images)).argmax(1)
        base = self.baseline.expand_as(images)
        diff = images - base
        total = torch.zeros(0)
        prev_act = torch.zeros(0)
        prev_grad = torch.zeros(0)
        for k, alpha in enumerate(self.alphas):
            with torch.no_grad():
                act = self.prefix(base + alpha * diff)
            act = act.detach().requires_grad_(True)
            picked = self.suffix(act).gather(1, prediction[:, None]).sum()
            grads = torch.autograd.grad([picked], [act])
            grad = grads[0]
            assert grad is not None
            act = act.detach()
            if k > 0:
                weight = grad if self.grad_at_right else prev_grad
                part = weight * (act - prev_act)
                total = part if k == 1 else total + part
            prev_act, prev_grad = act, grad
        cond = total.flatten(2).mean(2) if total.dim() > 2 else total
        score = self.detector(cond.float())
        return prediction, score, score <= self.threshold


def export_detector(model: nn.Module, layer: str, detector: MLPDetector, threshold: float,
                    baseline: torch.Tensor, method: str = "auto", n_steps: int = 10) -> torch.jit.ScriptModule:
    """The scripted detector for `model`'s `layer`; `baseline` is one input (C, H, W).

    `method`/`n_steps`: how the detector's features were computed ("auto" = the closed form where it applies,
    else the authors' right sum, as `layer_conductance`).
    """
    name = normalize_layer_path(layer)
    get_layer(model, name)
    head = closed_form_head(model, name) if method in ("auto", "closed_form") else None
    if method == "closed_form" and head is None:
        raise UsageError(f"export of layer {name!r}: expected a layer that feeds only global average pooling and "
                         f"the Linear head (the closed form); use an integration method")
    model = model.eval()
    if head is None:
        return _export_integrated(model, name, detector, threshold, baseline,
                                  "right" if method == "auto" else method, n_steps)
    trunk = _with_layer_output(model, name).eval()
    with torch.no_grad():
        _, base_acts = trunk(baseline[None].to(head.weight))
    _check_features(detector, name, base_acts.shape[1])
    module = DeployedDetector(trunk, head.weight, base_acts.flatten(2).mean(2)[0], detector.eval(), threshold)
    return torch.jit.script(module.eval())


def _check_features(detector: MLPDetector, name: str, channels: int) -> None:
    if channels != detector.shift.numel():
        raise UsageError(f"detector expects {detector.shift.numel()} features; layer {name!r} has "
                         f"{channels} channels")


def _export_integrated(model, name, detector, threshold, baseline, method, n_steps) -> torch.jit.ScriptModule:
    prefix, suffix = _prefix_and_suffix(model, name)
    param = next(model.parameters(), None)
    baseline = baseline[None].to(param if param is not None else baseline)
    with torch.no_grad():
        _check_features(detector, name, prefix(baseline).shape[1])
    module = IntegratedDeployedDetector(prefix, suffix, baseline, path_alphas(method, n_steps),
                                        method == "right", detector.eval(), threshold)
    return torch.jit.script(module.eval())
