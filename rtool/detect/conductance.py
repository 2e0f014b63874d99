"""Layer conductance of the predicted class per feature map (specs/conductance_lcr.md, section a).

For a layer y of the model and the target logit F (the predicted class by default), the conductance of neuron j
is a path sum from the baseline x' to the input x over points x_k = x' + a_k (x - x'):

    cond_j = sum_k dF/dy_j(x_{g(k)}) * (y_j(x_k) - y_j(x_{k-1})),   k = 1..n

Methods (n = n_steps):
- ``right`` (the authors'): a_k = k/n for k = 0..n, the gradient taken at the right point g(k) = k.
- Captum's ``riemann_trapezoid``, ``riemann_left``, ``riemann_middle``, ``riemann_right``, ``gausslegendre``:
  the n + 1 points of Captum's `alphas(n_steps + 1)` for that method, gradient at the left point g(k) = k - 1
  (Captum's `LayerConductance` ignores the quadrature weights, and so do we).

The per-channel value is the mean of cond_j over the spatial positions of the channel (layers with (N, C) outputs
keep their C values). Inputs and path points go through the model together, `max_rows` rows per forward and
backward pass; the sum is accumulated chunk by chunk, so memory is bounded by `max_rows`, not by n_steps.
The layer output is cut from the graph by a forward hook, so backward stops at the layer.

Closed form: when the layer's output reaches the logits only through global average pooling (optionally
flattened, dropout in eval) and one Linear layer, dF/dy is constant along the path and the right and trapezoid
sums telescope exactly to W[t, c] * (GAP(y(x))_c - GAP(y(x'))_c) / (H W) (the spatial mean). `method="auto"`
(the default) uses it when `torch.fx` shows that structure, else the authors' right sum; the result says which.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rtool.errors import UsageError
from rtool.models.layers import get_layer, normalize_layer_path

CAPTUM_METHODS = ("riemann_trapezoid", "riemann_left", "riemann_middle", "riemann_right", "gausslegendre")
INTEGRATION_METHODS = ("right",) + CAPTUM_METHODS
METHODS = ("auto", "closed_form") + INTEGRATION_METHODS


@dataclass(frozen=True)
class ConductanceSettings:
    """Conductance settings; the defaults are the authors' (10 steps, right sum, zero baseline)."""

    layer: str
    n_steps: int = 10
    method: str = "auto"          # see METHODS; "auto" = closed form where it applies, else "right"
    max_rows: int = 256           # rows (inputs x path points) per forward/backward pass

    def __post_init__(self) -> None:
        if not isinstance(self.layer, str) or not self.layer.strip():
            raise UsageError(f"conductance layer {self.layer!r}: expected a dotted layer name such as 'layer4'")
        if self.method not in METHODS:
            raise UsageError(f"conductance method {self.method!r}: expected one of {', '.join(METHODS)}")
        if not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise UsageError(f"conductance n_steps {self.n_steps!r}: expected an integer >= 1")
        if not isinstance(self.max_rows, int) or self.max_rows < 1:
            raise UsageError(f"conductance max_rows {self.max_rows!r}: expected an integer >= 1")


@dataclass(frozen=True)
class Conductance:
    """Per-channel conductance (N, C), the targets (N,) it was taken for, and how it was computed."""

    values: torch.Tensor
    targets: torch.Tensor
    layer: str
    method: str                   # the method actually used ("closed_form" or an integration method)
    n_steps: int


def path_alphas(method: str, n_steps: int) -> list[float]:
    """The n_steps + 1 interpolation coefficients of `method` (Captum's for the Captum names)."""
    points = n_steps + 1
    if method in ("right", "riemann_trapezoid"):
        return torch.linspace(0, 1, points).tolist()
    if method == "riemann_left":
        return torch.linspace(0, 1 - 1 / points, points).tolist()
    if method == "riemann_middle":
        return torch.linspace(1 / (2 * points), 1 - 1 / (2 * points), points).tolist()
    if method == "riemann_right":
        return torch.linspace(1 / points, 1, points).tolist()
    if method == "gausslegendre":
        return (0.5 * (1 + np.polynomial.legendre.leggauss(points)[0])).tolist()
    raise UsageError(f"conductance method {method!r}: expected one of {', '.join(INTEGRATION_METHODS)}")


class _LayerCut:
    """Forward hook: record the layer's output as a fresh leaf and feed a copy of it downstream."""

    def __init__(self, layer_name: str) -> None:
        self.layer_name = layer_name
        self.leaf: torch.Tensor | None = None

    def __call__(self, module: nn.Module, args, output):
        if self.leaf is not None:
            raise UsageError(f"layer {self.layer_name!r} runs more than once per forward pass; "
                             f"expected a layer used once")
        if not isinstance(output, torch.Tensor):
            raise UsageError(f"layer {self.layer_name!r} returns {type(output).__name__}; expected one tensor")
        self.leaf = output.detach().requires_grad_(True)
        return self.leaf.clone()  # downstream in-place ops must not touch the leaf


def _eval_and_grad(model: nn.Module, layer: nn.Module, cut: _LayerCut, rows: torch.Tensor,
                   targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Layer activations at `rows` and the gradient of logit[target] w.r.t. them, one pass each way; with
    `targets` None the activations alone, forward only (no graph)."""
    handle = layer.register_forward_hook(cut)
    try:
        cut.leaf = None
        with torch.set_grad_enabled(targets is not None):
            logits = model(rows)
            if cut.leaf is None:
                raise UsageError(f"layer {cut.layer_name!r} is not used by the model's forward pass")
            if targets is None:
                return cut.leaf.detach(), None
            picked = logits.gather(1, targets[:, None]).sum()
            (grad,) = torch.autograd.grad(picked, cut.leaf, allow_unused=True)
        if grad is None:
            raise UsageError(f"layer {cut.layer_name!r} does not reach the model's output; expected a layer on "
                             f"the path to the logits")
        return cut.leaf.detach(), grad
    finally:
        handle.remove()
        cut.leaf = None


def _spatial_mean(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(2).mean(2) if values.dim() > 2 else values


def _shared(baseline: torch.Tensor) -> bool:
    """True where several inputs share one baseline (every row equal, as the default zeros)."""
    return baseline.shape[0] > 1 and bool((baseline == baseline[:1]).all())


def _path_rows(rows: torch.Tensor) -> torch.Tensor:
    # oneDNN's convolutions run 1.2-1.35x faster on channels-last images on a CPU (resnet18, batch 16 at 224,
    # measured here); the values differ by float rounding only. CUDA keeps the caller's layout (not measured).
    if rows.dim() == 4 and rows.device.type == "cpu":
        return rows.contiguous(memory_format=torch.channels_last)
    return rows


def _integrated(model, layer, name, inputs, baseline, targets, method, n_steps, max_rows) -> torch.Tensor:
    alphas = path_alphas(method, n_steps)
    grad_at_right = method == "right"
    n = inputs.shape[0]
    diff = inputs - baseline
    cut = _LayerCut(name)
    per_pass = max(1, max_rows // max(n, 1))
    total = None
    prev_act = prev_grad = None
    if grad_at_right and alphas[0] == 0.0 and _shared(baseline):
        # The right sum needs no gradient at the path's start, and a baseline shared by every input (the default
        # zeros) has one activation there (eval mode: rows are independent): one row, forward only.
        start_act, _ = _eval_and_grad(model, layer, cut, _path_rows(baseline[:1]), None)
        prev_act = start_act.expand(n, *start_act.shape[1:]).contiguous()
        prev_grad = torch.zeros_like(prev_act)  # never used by the right sum
        alphas = alphas[1:]
    for start in range(0, len(alphas), per_pass):
        chunk = alphas[start:start + per_pass]
        rows = _path_rows(torch.cat([baseline + a * diff for a in chunk], 0))
        acts, grads = _eval_and_grad(model, layer, cut, rows, targets.repeat(len(chunk)))
        acts = acts.unflatten(0, (len(chunk), n))
        grads = grads.unflatten(0, (len(chunk), n))
        if prev_act is not None:
            acts = torch.cat([prev_act[None], acts], 0)
            grads = torch.cat([prev_grad[None], grads], 0)
        if acts.shape[0] > 1:
            steps = acts[1:] - acts[:-1]
            weight = grads[1:] if grad_at_right else grads[:-1]
            part = (weight * steps).sum(0)
            total = part if total is None else total + part
        prev_act, prev_grad = acts[-1], grads[-1]
    return _spatial_mean(total)


# ---- closed form -------------------------------------------------------------------------------------------

class _StopAt(torch.fx.Tracer):
    def __init__(self, layer_name: str) -> None:
        super().__init__()
        self.layer_name = layer_name

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return qualname == self.layer_name or super().is_leaf_module(m, qualname)


def _is_gap(node, modules) -> bool:
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, nn.AdaptiveAvgPool2d):
            return mod.output_size in (1, (1, 1))
        return False
    if node.op in ("call_function", "call_method") and node.target in (torch.mean, "mean"):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return dims is not None and sorted(int(d) % 4 for d in (dims if isinstance(dims, (tuple, list)) else [dims])) == [2, 3]
    if node.op == "call_function" and node.target is torch.nn.functional.adaptive_avg_pool2d:
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return size in (1, (1, 1))
    return False


def _is_flatten(node, modules) -> bool:
    if node.op == "call_module":
        mod = modules[node.target]
        return isinstance(mod, nn.Flatten) and mod.start_dim == 1 or isinstance(mod, (nn.Dropout, nn.Identity))
    if node.op in ("call_function", "call_method") and node.target in (torch.flatten, "flatten"):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        return start == 1
    return False


def closed_form_head(model: nn.Module, layer_name: str) -> nn.Linear | None:
    """The Linear head when `layer_name`'s output reaches the logits only through GAP (+ flatten) and it; else None."""
    try:
        graph = _StopAt(layer_name).trace(model)
    except Exception:  # models fx cannot trace simply use the integrated form
        return None
    modules = dict(model.named_modules())
    nodes = [n for n in graph.nodes if n.op == "call_module" and n.target == layer_name]
    if len(nodes) != 1:
        return None
    node, seen_gap = nodes[0], False
    while True:
        users = list(node.users)
        if len(users) != 1:
            return None
        node = users[0]
        if node.op == "output":
            return None
        if not seen_gap and _is_gap(node, modules):
            seen_gap = True
        elif seen_gap and _is_flatten(node, modules):
            continue
        elif seen_gap and node.op == "call_module" and isinstance(modules[node.target], nn.Linear):
            users = list(node.users)
            return modules[node.target] if len(users) == 1 and users[0].op == "output" else None
        else:
            return None


def _closed_form(model, layer, name, head, inputs, baseline, targets) -> torch.Tensor:
    cut = _LayerCut(name)
    # one baseline row when every input shares it (the default zeros): the model runs in eval mode, so rows do not
    # interact and its pooled activation broadcasts
    act, base = (_eval_and_grad(model, layer, cut, rows, None)[0]
                 for rows in (inputs, baseline[:1] if _shared(baseline) else baseline))
    if act.dim() != 4:
        raise UsageError(f"layer {name!r} gives {act.dim()}-d output; the closed form expects (N, C, H, W)")
    spatial = act.shape[2] * act.shape[3]
    pooled_diff = act.flatten(2).mean(2) - base.flatten(2).mean(2)
    return head.weight[targets].to(pooled_diff.dtype) * pooled_diff / spatial


# ---- entry point -------------------------------------------------------------------------------------------

def layer_conductance(model: nn.Module, inputs: torch.Tensor, settings: ConductanceSettings,
                      baseline: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> Conductance:
    """Per-channel conductance of `settings.layer` for `inputs` (N, ...) w.r.t. the logit of `targets`.

    `baseline` defaults to zeros (in the model's preprocessed input space) and broadcasts to `inputs`;
    `targets` defaults to the model's predictions. The model runs in eval mode; its mode is restored after.
    """
    name = normalize_layer_path(settings.layer)
    layer = get_layer(model, name)
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2:
        raise UsageError(f"conductance inputs: expected a tensor (N, ...), got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)}")
    if baseline is None:
        baseline = torch.zeros_like(inputs)
    else:
        try:
            baseline = torch.broadcast_to(baseline.to(inputs), inputs.shape)
        except RuntimeError:
            raise UsageError(f"conductance baseline shape {tuple(baseline.shape)}: expected one that broadcasts "
                             f"to the inputs {tuple(inputs.shape)}") from None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if targets is None:
                targets = model(inputs).argmax(1)
            targets = torch.as_tensor(targets, device=inputs.device).long().reshape(-1)
            if targets.numel() != inputs.shape[0]:
                raise UsageError(f"conductance targets: {targets.numel()} given, expected one per input "
                                 f"({inputs.shape[0]})")
            classes = model(inputs[:1]).shape[1]
            if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= classes):
                raise UsageError(f"conductance targets {int(targets.min())}..{int(targets.max())}: expected classes "
                                 f"in 0..{classes - 1}")
        method = settings.method
        head = closed_form_head(model, name) if method in ("auto", "closed_form") else None
        if method == "closed_form" and head is None:
            raise UsageError(f"closed-form conductance for layer {name!r}: expected the layer to feed only global "
                             f"average pooling and one Linear layer; use an integration method")
        if head is not None:
            with torch.no_grad():
                values = _closed_form(model, layer, name, head, inputs, baseline, targets)
            method = "closed_form"
        else:
            method = "right" if method == "auto" else method
            chunks = []
            step = max(1, settings.max_rows)
            for start in range(0, inputs.shape[0], step):
                sl = slice(start, start + step)
                chunks.append(_integrated(model, layer, name, inputs[sl], baseline[sl], targets[sl], method,
                                          settings.n_steps, settings.max_rows))
            values = torch.cat(chunks, 0) if chunks else inputs.new_zeros((0, 0))
    finally:
        model.train(was_training)
    return Conductance(values=values.detach(), targets=targets, layer=name, method=method,
                       n_steps=settings.n_steps)
