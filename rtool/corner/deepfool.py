"""Batched multi-class L2 DeepFool and the robustness radius of a model (specs/corner_cases.md, section C).

Per iteration, the whole active batch costs one forward pass and one batched backward pass: the K candidate
logit differences f_k - f_label are differentiated together with `torch.autograd.grad(..., is_grads_batched=True)`,
and the step of every sample comes from `rtool.ops.deepfool_step`. A sample leaves the batch as soon as its
label flips (or it runs out of iterations), and the remaining ones are compacted (a fresh forward pass over the
survivors, unless so few finished that carrying their rows through one more backward is cheaper).
Everything stays on the images' device.

Modes:
- ``lts4``: the authors' semantics (the LTS4 Python code the corner-case repository runs): label = the model's
  prediction on x0; candidates = the `num_candidates` largest logits at x0, fixed for the run; step
  r_i = (|f'_l| / ||w'_l|| + 1e-4) w'_l / ||w'_l||; linearisation at x0 + (1 + eta) r_tot; no clipping;
  r_hat = (1 + eta) r_tot.
- ``clip``: the projected variant that keeps the image in [clip_min, clip_max]: linearise at the current
  iterate x_t, x_{t+1} = clip(x_t + (1 + eta) r_t); r_hat = x_final - x0 (the same iteration as torchattacks'
  DeepFool when step_eps = 0).

The model runs in eval mode (dropout off, batch-norm statistics fixed), so samples are independent and the
batched result equals a per-sample loop; its previous mode is restored afterwards. `train_mode=True` reproduces
the authors' quirk of never calling eval() (dropout active, so results are random; models with batch norm are
refused): each step's gradients then come from the same forward pass that decided the stop, as in the loop.
A sample none of whose candidates has a non-zero gradient difference cannot move: it stops at once, not
converged (the LTS4 code would produce NaN there).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from rtool.engine import progress
from rtool.errors import UsageError
from rtool.ops import deepfool_step

DEEPFOOL_MODES = ("lts4", "clip")


@dataclass(frozen=True)
class DeepFoolConfig:
    """DeepFool settings; the defaults are the authors' (LTS4 Python code as run by the corner-case repository)."""

    mode: str = "lts4"            # "lts4" (no clipping) or "clip" (projected onto [clip_min, clip_max])
    overshoot: float = 0.02       # eta
    max_iter: int = 50
    num_candidates: int = 10      # the label plus the num_candidates - 1 next largest logits at x0
    step_eps: float = 1e-4        # fixed extra step length per iteration, input units (0 = the paper's step)
    clip_min: float = 0.0
    clip_max: float = 1.0
    train_mode: bool = False      # reference quirk (spec B.1): run the model in training mode, dropout active

    def __post_init__(self) -> None:
        if self.mode not in DEEPFOOL_MODES:
            raise UsageError(f"DeepFool mode {self.mode!r}: expected one of {', '.join(DEEPFOOL_MODES)}")
        if not (math.isfinite(self.overshoot) and self.overshoot >= 0):
            raise UsageError(f"DeepFool overshoot {self.overshoot}: expected a finite number >= 0")
        if not isinstance(self.max_iter, int) or self.max_iter < 0:
            raise UsageError(f"DeepFool max_iter {self.max_iter!r}: expected an integer >= 0")
        if not isinstance(self.num_candidates, int) or self.num_candidates < 2:
            raise UsageError(f"DeepFool num_candidates {self.num_candidates!r}: expected an integer >= 2")
        if not (math.isfinite(self.step_eps) and self.step_eps >= 0):
            raise UsageError(f"DeepFool step_eps {self.step_eps}: expected a finite number >= 0")
        if not self.clip_min < self.clip_max:
            raise UsageError(f"DeepFool clip range [{self.clip_min}, {self.clip_max}]: expected clip_min < clip_max")


@dataclass(frozen=True)
class RadiusSummary:
    """Model-level robustness figures over a set of samples."""

    count: int
    mean_radius: float          # mean ||r_hat||_2 (the corner-case repository's `mean_radius`)
    rho_adv: float              # mean ||r_hat||_2 / ||x||_2 (the DeepFool paper's rho_adv)
    median_radius: float
    converged_fraction: float   # fraction of samples whose label flipped within max_iter


@dataclass
class DeepFoolResult:
    """Per-sample DeepFool results, in input order, on the CPU.

    radius [N] = ||r_hat||_2 (float64; r_hat includes the overshoot factor); rho [N] = radius / ||x||_2
    (inf for an all-zero x); iterations [N] int64; converged [N] bool (the label flipped within max_iter);
    label [N] int64 = the model's prediction on x (the attacked label); final_label [N] int64 = the prediction
    at x + r_hat; perturbation [N, *input] = r_hat in the input dtype, or None when not requested.
    """

    radius: torch.Tensor
    rho: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    label: torch.Tensor
    final_label: torch.Tensor
    perturbation: torch.Tensor | None = None
    config: DeepFoolConfig = field(default_factory=DeepFoolConfig)

    def __len__(self) -> int:
        return int(self.radius.numel())

    def summary(self) -> RadiusSummary:
        return summarize_radii(self)

    def columns(self) -> dict[str, list]:
        """Per-sample columns for a CSV: `rob` and `pred_y` as the authors' rob_<m>.csv, then rtool's extras."""
        return {
            "rob": self.radius.tolist(),
            "pred_y": self.final_label.tolist(),
            "rho": self.rho.tolist(),
            "label": self.label.tolist(),
            "iterations": self.iterations.tolist(),
            "converged": self.converged.tolist(),
        }

    @staticmethod
    def concat(parts: list[DeepFoolResult], config: DeepFoolConfig) -> DeepFoolResult:
        """Joins per-batch (or per-shard) results in order; perturbations are kept only if every part has them."""

        def cat(name):
            return torch.cat([getattr(p, name) for p in parts])

        with_pert = bool(parts) and all(p.perturbation is not None for p in parts)
        if not parts:
            empty = torch.empty(0, dtype=torch.float64)
            long = torch.empty(0, dtype=torch.long)
            return DeepFoolResult(empty, empty.clone(), long, torch.empty(0, dtype=torch.bool), long.clone(),
                                  long.clone(), None, config)
        return DeepFoolResult(cat("radius"), cat("rho"), cat("iterations"), cat("converged"), cat("label"),
                              cat("final_label"), cat("perturbation") if with_pert else None, config)


def summarize_radii(result: DeepFoolResult) -> RadiusSummary:
    """Mean radius, rho_adv (mean of ||r_hat|| / ||x||), median radius and converged fraction; NaN when empty."""
    count = len(result)
    if count == 0:
        nan = float("nan")
        return RadiusSummary(0, nan, nan, nan, nan)
    radius = result.radius.double()
    return RadiusSummary(
        count=count,
        mean_radius=float(radius.mean()),
        rho_adv=float(result.rho.double().mean()),
        median_radius=float(radius.quantile(0.5)),  # the midpoint of the two middle values for even counts
        converged_fraction=float(result.converged.double().mean()),
    )


def _logits(model: nn.Module, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != num_samples:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise UsageError(f"DeepFool needs a model returning logits [N, classes]; for {num_samples} inputs it "
                         f"returned {shape}")
    if out.shape[1] < 2:
        raise UsageError(f"DeepFool needs at least 2 classes; the model returns {out.shape[1]} logit(s)")
    return out


def _jacobian_of_differences(diff: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Gradients of every column of diff [A, K] with respect to x [G, ...] (the graph's batch), as [G, K, D],
    in one batched backward pass. Each row of diff depends on one row of x only."""
    active, cands = diff.shape
    basis = torch.eye(cands, dtype=diff.dtype, device=diff.device)[:, None, :].expand(cands, active, cands)
    (grads,) = torch.autograd.grad(diff, x, grad_outputs=basis, is_grads_batched=True)
    return grads.reshape(cands, x.shape[0], -1).transpose(0, 1)


def _run(model: nn.Module, images: torch.Tensor, cfg: DeepFoolConfig, keep_perturbations: bool) -> DeepFoolResult:
    n = images.shape[0]
    x0_all = images.detach()
    radius_all = torch.zeros(n, dtype=torch.float64, device=images.device)
    iterations_all = torch.zeros(n, dtype=torch.long, device=images.device)
    converged_all = torch.zeros(n, dtype=torch.bool, device=images.device)
    final_all = torch.zeros(n, dtype=torch.long, device=images.device)
    pert_all = torch.zeros_like(x0_all) if keep_perturbations else None
    clip = cfg.mode == "clip"
    scale = 1.0 + cfg.overshoot

    x = x0_all.clone().requires_grad_(True)
    logits = _logits(model, x, n)
    cands = min(cfg.num_candidates, logits.shape[1])
    # Candidates sorted by logit, descending; a stable sort puts the lower index first among equal logits.
    candidates = logits.detach().sort(dim=1, descending=True, stable=True).indices[:, :cands]
    label_all = candidates[:, 0].clone()

    index = torch.arange(n, device=images.device)  # active row -> sample
    x0 = x0_all
    r_tot = torch.zeros_like(x0_all)               # lts4: accumulated steps; clip: x_t - x0
    iterations = torch.zeros(n, dtype=torch.long, device=images.device)

    def finish(done: torch.Tensor, pred: torch.Tensor, flipped: torch.Tensor) -> None:
        rows = index[done]
        r_hat = (scale * r_tot[done]) if not clip else r_tot[done]
        radius_all[rows] = torch.linalg.vector_norm(r_hat.flatten(1).double(), dim=1)
        iterations_all[rows] = iterations[done]
        converged_all[rows] = flipped[done]
        final_all[rows] = pred[done]
        if pert_all is not None:
            pert_all[rows] = r_hat

    if cfg.max_iter == 0:
        everyone = torch.ones(n, dtype=torch.bool, device=images.device)
        finish(everyone, label_all, ~everyone)

    # `graph_rows`: where each active sample sits in the batch of the current graph (None = row i is sample i).
    graph_rows: torch.Tensor | None = None
    while cfg.max_iter > 0 and index.numel() > 0:
        selected = (logits if graph_rows is None else logits[graph_rows]).gather(1, candidates)
        diff = selected[:, 1:] - selected[:, :1]                           # f'_k, [A, K]
        grad_diff = _jacobian_of_differences(diff, x)                      # w'_k, [A or graph rows, K, D]
        if graph_rows is not None:
            grad_diff = grad_diff[graph_rows]
        step, chosen, _ = deepfool_step(diff.detach(), grad_diff, cfg.step_eps)
        moved = chosen >= 0
        iterations += moved.long()
        step = step.view_as(x0)
        with torch.no_grad():
            if clip:
                x_new = (x0 + r_tot + scale * step).clamp_(cfg.clip_min, cfg.clip_max)
                r_tot = x_new - x0
            else:
                r_tot = r_tot + step
                x_new = x0 + scale * r_tot
        x = x_new.requires_grad_(True)
        logits = _logits(model, x, x.shape[0])
        graph_rows = None
        pred = logits.detach().argmax(dim=1)
        flipped = pred != label_all[index]
        done = flipped | ~moved | (iterations >= cfg.max_iter)
        if not bool(done.any()):
            continue
        finish(done, pred, flipped)
        keep = ~done
        if not bool(keep.any()):
            break
        index, x0, r_tot = index[keep], x0[keep], r_tot[keep]
        iterations, candidates = iterations[keep], candidates[keep]
        finished, survivors = int(done.sum()), int(keep.sum())
        if cfg.train_mode or finished * (candidates.shape[1] - 1) < survivors:
            # Keep this graph and read the surviving rows out of it. Needed with stochastic layers (the next
            # gradients must come from the forward pass that decided the stop, as in the reference loop); and
            # cheaper when few samples finished: carrying their rows through the K-vector backward costs less
            # than a new forward pass over the survivors.
            graph_rows = keep.nonzero()[:, 0]
        else:
            x = x.detach()[keep].requires_grad_(True)
            logits = _logits(model, x, x.shape[0])  # a fresh graph over the compacted batch only

    norms = torch.linalg.vector_norm(x0_all.flatten(1).double(), dim=1)
    return DeepFoolResult(
        radius=radius_all.cpu(),
        rho=(radius_all / norms).cpu(),
        iterations=iterations_all.cpu(),
        converged=converged_all.cpu(),
        label=label_all.cpu(),
        final_label=final_all.cpu(),
        perturbation=pert_all.cpu() if pert_all is not None else None,
        config=cfg,
    )


def deepfool_batch(model: nn.Module, images: torch.Tensor, config: DeepFoolConfig | None = None, *,
                   return_perturbations: bool = False) -> DeepFoolResult:
    """DeepFool on one batch of inputs [N, ...] (already on the model's device, in the model's dtype).

    Returns per-sample results on the CPU (see DeepFoolResult). The model is put in eval mode (train mode with
    `config.train_mode`) for the run; its previous mode and the parameters' requires_grad flags are restored
    afterwards, and no parameter gets a gradient.
    """
    cfg = config or DeepFoolConfig()
    if not isinstance(images, torch.Tensor) or images.dim() < 2:
        raise UsageError(f"DeepFool images: expected a tensor [N, ...], got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if not images.is_floating_point():
        raise UsageError(f"DeepFool images: expected a floating-point tensor, got {images.dtype}")
    if images.dtype not in (torch.float32, torch.float64):
        raise UsageError(f"DeepFool images: expected float32 or float64, got {images.dtype}")
    if images.shape[0] == 0:
        return DeepFoolResult.concat([], cfg)
    if cfg.train_mode:
        norms = [type(m).__name__ for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if norms:
            raise UsageError(f"DeepFool train_mode: the model has batch-norm layers ({norms[0]}), which would mix "
                             "samples and change their running statistics; use train_mode=False")
    was_training = model.training
    # Only input gradients are needed: freezing the parameters keeps autograd from computing weight gradients.
    frozen = [p for p in model.parameters() if p.requires_grad]
    model.train(cfg.train_mode)
    try:
        for p in frozen:
            p.requires_grad_(False)
        with torch.enable_grad():
            return _run(model, images, cfg, return_perturbations)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.train(was_training)


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def _model_dtype(model: nn.Module) -> torch.dtype:
    for tensor in model.parameters():
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _batches(data, batch_size: int) -> tuple[Iterable, int | None]:
    if isinstance(data, torch.Tensor):
        return (data[i:i + batch_size] for i in range(0, data.shape[0], batch_size)), data.shape[0]
    if isinstance(data, Dataset):
        total = len(data) if hasattr(data, "__len__") else None
        return DataLoader(data, batch_size=batch_size, shuffle=False), total
    if isinstance(data, Iterable):
        return data, None
    raise UsageError(f"DeepFool data: expected an image tensor, a Dataset or an iterable of batches, "
                     f"got {type(data).__name__}")


def robustness_radius(model: nn.Module, data, config: DeepFoolConfig | None = None, *, batch_size: int = 256,
                      quiet: bool = False, return_perturbations: bool = False) -> DeepFoolResult:
    """DeepFool robustness radius of every sample of `data`, in order, on the model's device.

    data: an image tensor [N, ...], a Dataset whose items are images or (image, label, ...) tuples, or an
    iterable of such batches (a DataLoader; it must not shuffle if the order matters). Labels are ignored: DeepFool
    attacks the model's prediction. Batches of `batch_size` run one after another with a progress bar.
    Call `.summary()` on the result for the model-level figures.
    """
    cfg = config or DeepFoolConfig()
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"DeepFool batch_size {batch_size!r}: expected an integer >= 1")
    device, dtype = _model_device(model), _model_dtype(model)
    batches, total = _batches(data, batch_size)
    parts = []
    bar = progress(total=total, desc="DeepFool", quiet=quiet, unit="img")
    try:
        for batch in batches:
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            images = images.to(device=device, dtype=dtype)
            parts.append(deepfool_batch(model, images, cfg, return_perturbations=return_perturbations))
            bar.update(images.shape[0])
    finally:
        bar.close()
    return DeepFoolResult.concat(parts, cfg)
