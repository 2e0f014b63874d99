"""Model mutants and the label change rate (specs/conductance_lcr.md, section b).

The unit of mutation is one output channel (filter) of a convolution (every `nn.Conv1d/2d/3d`, not transposed);
Linear, batch-norm layers and conv biases are left alone except where an operator says otherwise.
A mutant is fully determined by (operator, gamma, seed) and is never stored as a model: only the few conv weights
it changes are built, from the clean weights, when it is evaluated. Mutants are evaluated `mutant_batch` at a time
with `torch.func.functional_call` on stacked conv weights under `torch.vmap` (the rest of the parameters are shared).
Where `torch.fx` can trace the model, the layers before the first mutated one run once per input batch for all
mutants of a batch (mutants are grouped by their first mutated layer for that), and only the rest is vmapped.

Operators (gamma = fraction of the network's N_f conv filters; NAI, GF and WS change floor(gamma N_f) filters
drawn uniformly without replacement across the whole network):
- NAI: negate the filter's weights (the bias stays, as in the authors' code).
- GF: resample the filter elementwise from N(mu, sigma), mu and sigma the mean and (population) std over the
  layer's filters at each weight position.
- WS: shuffle the weights inside the filter (a random permutation of its elements).
- NS: in each conv layer, floor(gamma n_l) filters rotate cyclically (weights and bias move together), so a layer
  needs at least 2 picked filters to change.

Accept rule: a candidate is kept when its accuracy on the validation set is >= accept_ratio x the original
model's; candidates are drawn in seed order until `target_mutants` are kept (or `max_candidates` are spent).
LCR(x) = the fraction of kept mutants whose top class differs from the original model's prediction on x.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from rtool.errors import UsageError

OPERATORS = ("NAI", "GF", "WS", "NS")


@dataclass(frozen=True)
class MutationSettings:
    """Mutation settings; defaults follow the authors' final CIFAR runs (NAI, gamma 0.01, 100 mutants)."""

    operator: str = "NAI"
    gamma: float = 0.01            # fraction of conv filters changed per mutant
    target_mutants: int = 100      # accepted mutants wanted
    accept_ratio: float = 0.9      # keep a mutant with val accuracy >= accept_ratio x the original's
    max_candidates: int = 1000     # give up after this many drawn candidates
    seed: int = 0
    mutant_batch: int = 10         # mutants per vmapped pass
    input_batch: int = 256         # inputs per pass

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise UsageError(f"mutation operator {self.operator!r}: expected one of {', '.join(OPERATORS)}")
        if not (isinstance(self.gamma, (int, float)) and 0 < self.gamma <= 1):
            raise UsageError(f"mutation gamma {self.gamma!r}: expected a fraction in (0, 1]")
        for name in ("target_mutants", "max_candidates", "mutant_batch", "input_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"mutation {name} {value!r}: expected an integer >= 1")
        if not (0 <= self.accept_ratio <= 1):
            raise UsageError(f"mutation accept_ratio {self.accept_ratio!r}: expected a number in [0, 1]")


@dataclass(frozen=True)
class MutantSet:
    """The accepted mutants (as seeds), their validation accuracies and the rejection count."""

    settings: MutationSettings
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    original_accuracy: float
    candidates_drawn: int


@dataclass(frozen=True)
class LabelChangeRate:
    """LCR per input (N,), the original predictions (N,) and each mutant's predictions (M, N)."""

    lcr: torch.Tensor
    original: torch.Tensor
    mutant_predictions: torch.Tensor


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(dotted name, module) of every (non-transposed) convolution, in registration order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.modules.conv._ConvNd) and not m.transposed]


def candidate_seed(seed: int, index: int) -> int:
    """The seed of candidate `index` of a run seeded `seed` (independent streams per candidate)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def mutant_parameters(model: nn.Module, operator: str, gamma: float, seed: int) -> dict[str, torch.Tensor]:
    """The changed parameters of mutant (operator, gamma, seed): {parameter name: new tensor}."""
    if operator not in OPERATORS:
        raise UsageError(f"mutation operator {operator!r}: expected one of {', '.join(OPERATORS)}")
    convs = conv_layers(model)
    if not convs:
        raise UsageError(f"{type(model).__name__} has no convolution layers to mutate")
    gen = torch.Generator().manual_seed(int(seed))
    changed: dict[str, torch.Tensor] = {}
    if operator == "NS":
        for name, conv in convs:
            n = conv.weight.shape[0]
            k = math.floor(gamma * n)
            if k < 2:
                continue
            picked = torch.randperm(n, generator=gen)[:k].to(conv.weight.device)
            source = picked.roll(1)
            for pname in ("weight", "bias"):
                param = getattr(conv, pname)
                if param is not None:
                    new = param.detach().clone()
                    new[picked] = param.detach()[source]
                    changed[f"{name}.{pname}"] = new
        if not changed:
            raise UsageError(f"mutation gamma {gamma}: NS picks fewer than 2 filters in every conv layer; "
                             f"expected a larger gamma")
        return changed
    counts = [conv.weight.shape[0] for _, conv in convs]
    total = sum(counts)
    k = math.floor(gamma * total)
    if k < 1:
        raise UsageError(f"mutation gamma {gamma}: floor(gamma x {total} filters) is 0; expected a larger gamma")
    picked = torch.randperm(total, generator=gen)[:k].sort().values
    offsets = np.cumsum([0] + counts)
    for i, (name, conv) in enumerate(convs):
        local = picked[(picked >= offsets[i]) & (picked < offsets[i + 1])] - int(offsets[i])
        if local.numel() == 0:
            continue
        weight = conv.weight.detach()
        new = weight.clone()
        if operator == "NAI":
            new[local] = -weight[local]
        elif operator == "GF":
            mu, sigma = weight.mean(0), weight.std(0, correction=0)
            noise = torch.randn((local.numel(),) + tuple(weight.shape[1:]), generator=gen, dtype=weight.dtype)
            new[local] = mu + sigma * noise.to(weight.device)
        else:  # WS
            per = weight[0].numel()
            for f in local.tolist():
                order = torch.randperm(per, generator=gen).to(weight.device)
                new[f] = weight[f].flatten()[order].view_as(weight[f])
        changed[f"{name}.weight"] = new
    return changed


def _mutant_logits(model: nn.Module, mutants: list[dict[str, torch.Tensor]], inputs: torch.Tensor) -> torch.Tensor:
    """Logits (M, N, K) of the mutants on `inputs`, all mutants in one vmapped pass."""
    clean = dict(model.named_parameters())
    keys = sorted(set().union(*mutants))
    stacked = {key: torch.stack([m.get(key, clean[key].detach()) for m in mutants]) for key in keys}

    def run(params, x):
        return functional_call(model, params, (x,))

    return torch.vmap(run, in_dims=(0, None), randomness="error")(stacked, inputs)


class _Graph:
    """The model as an fx graph, so the part before the first mutated layer runs once for all mutants."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.graph = torch.fx.symbolic_trace(model).graph
        self.nodes = list(self.graph.nodes)

    def cut(self, names) -> int:
        """Index of the first node that reads one of the parameters `names` (len(nodes) if none does)."""
        owners = {name.rsplit(".", 1)[0] for name in names}
        for i, node in enumerate(self.nodes):
            if node.op == "call_module" and node.target in owners or node.op == "get_attr" and node.target in names:
                return i
        return len(self.nodes)

    def _run(self, nodes, env, params):
        for node in nodes:
            args = torch.fx.node.map_arg(node.args, lambda n: env[n])
            kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
            if node.op == "placeholder":
                env[node] = params["__input__"]
            elif node.op == "get_attr":
                env[node] = params[node.target] if node.target in params else \
                    _attribute(self.model, node.target)
            elif node.op == "call_module":
                module = self.model.get_submodule(node.target)
                prefix = node.target + "."
                own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
                env[node] = functional_call(module, own, args, kwargs) if own else module(*args, **kwargs)
            elif node.op == "call_function":
                env[node] = node.target(*args, **kwargs)
            elif node.op == "call_method":
                env[node] = getattr(args[0], node.target)(*args[1:], **kwargs)
            else:  # output
                return args[0]
        return env

    def logits(self, mutants: list[dict[str, torch.Tensor]], inputs: torch.Tensor) -> torch.Tensor:
        clean = dict(self.model.named_parameters())
        keys = sorted(set().union(*mutants))
        stacked = {key: torch.stack([m.get(key, clean[key].detach()) for m in mutants]) for key in keys}
        cut = self.cut(keys)
        prefix_env = self._run(self.nodes[:cut], {}, {"__input__": inputs})
        needed = {n for node in self.nodes[cut:] for n in node.all_input_nodes if n in prefix_env}

        def run(params):
            env = {n: prefix_env[n].clone() for n in needed}  # the suffix may work in place on them
            return self._run(self.nodes[cut:], env, params)

        if inputs.device.type == "cpu":
            # On a CPU the vmapped suffix (grouped convolutions) was 1.6x slower than one dense pass per mutant.
            return self._logits_one_by_one(mutants, inputs)
        return torch.vmap(run, randomness="error")(stacked)

    def _logits_one_by_one(self, mutants: list[dict[str, torch.Tensor]], inputs: torch.Tensor) -> torch.Tensor:
        """One pass per mutant from its first mutated layer on. When that layer is a plain convolution, its clean
        output is computed once and each mutant recomputes only the output channels it changed."""
        prefixes: dict[int, dict] = {}
        logits = []
        clean = None
        for params in mutants:
            cut = self.cut(params)
            if cut >= len(self.nodes):  # nothing changed (e.g. NS with fewer than 2 filters picked in a layer)
                clean = self.model(inputs) if clean is None else clean
                logits.append(clean)
                continue
            partial = self._changed_channels(cut, params)
            stop = cut + 1 if partial is not None else cut
            if stop not in prefixes:
                prefixes[stop] = self._run(self.nodes[:stop], {}, {"__input__": inputs})
            prefix_env = prefixes[stop]
            needed = {n for node in self.nodes[stop:] for n in node.all_input_nodes if n in prefix_env}
            env = {n: prefix_env[n].clone() for n in needed}  # the suffix may work in place on them
            rest = params
            if partial is not None:
                node, module, rows = partial
                weight = params.get(node.target + ".weight", module.weight)[rows]
                bias = params.get(node.target + ".bias", module.bias)
                x = prefix_env[node.args[0]]
                if node in env:
                    env[node][:, rows] = module._conv_forward(x, weight, None if bias is None else bias[rows])
                rest = {k: v for k, v in params.items() if not k.startswith(node.target + ".")}
            logits.append(self._run(self.nodes[stop:], env, rest))
        return torch.stack(logits)

    def _changed_channels(self, cut: int, params: dict[str, torch.Tensor]):
        """(node, conv module, changed output channels) when node `cut` is a groups=1 convolution on one input,
        else None."""
        node = self.nodes[cut]
        if node.op != "call_module" or node.kwargs or len(node.args) != 1 or not isinstance(node.args[0],
                                                                                             torch.fx.Node):
            return None
        module = self.model.get_submodule(node.target)
        if not isinstance(module, nn.modules.conv._ConvNd) or module.transposed or module.groups != 1:
            return None
        own = {k[len(node.target) + 1:]: v for k, v in params.items() if k.startswith(node.target + ".")}
        if not set(own) <= {"weight", "bias"}:
            return None
        changed = torch.zeros(module.out_channels, dtype=torch.bool, device=module.weight.device)
        if "weight" in own:
            changed |= (own["weight"] != module.weight).flatten(1).any(1)
        if "bias" in own and module.bias is not None:
            changed |= own["bias"] != module.bias
        return node, module, changed.nonzero()[:, 0]


def _attribute(model: nn.Module, target: str):
    value = model
    for part in target.split("."):
        value = getattr(value, part)
    return value


def _graph_of(model: nn.Module) -> _Graph | None:
    try:
        return _Graph(model)
    except Exception:  # models fx cannot trace run whole under vmap
        return None


def _batched_predictions(model, settings, seeds, inputs) -> torch.Tensor:
    graph = _graph_of(model)
    params = [mutant_parameters(model, settings.operator, settings.gamma, s) for s in seeds]
    # mutants whose first changed layer comes late go together, so their batch shares a longer prefix
    order = sorted(range(len(seeds)), key=lambda i: graph.cut(params[i]) if graph else 0)
    preds = torch.empty((len(seeds), inputs.shape[0]), dtype=torch.long, device=inputs.device)
    for start in range(0, len(seeds), settings.mutant_batch):
        rows = order[start:start + settings.mutant_batch]
        batch = [params[i] for i in rows]
        for i in range(0, inputs.shape[0], settings.input_batch):
            x = inputs[i:i + settings.input_batch]
            logits = graph.logits(batch, x) if graph else _mutant_logits(model, batch, x)
            preds[rows, i:i + settings.input_batch] = logits.argmax(-1)
    return preds


def _predictions(model, inputs, batch) -> torch.Tensor:
    return torch.cat([model(inputs[i:i + batch]).argmax(1) for i in range(0, inputs.shape[0], batch)])


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class _Eval:
    """Eval mode and no grad for the duration; the previous mode is restored."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self.grad = torch.no_grad()
        self.grad.__enter__()
        self.model.eval()

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        self.model.train(self.was_training)


def _check_inputs(inputs, what):
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 2 or inputs.shape[0] == 0:
        raise UsageError(f"{what}: expected a non-empty tensor (N, ...), got "
                         f"{tuple(getattr(inputs, 'shape', ())) or type(inputs).__name__}")


def accepted_mutants(model: nn.Module, val_inputs: torch.Tensor, val_labels: torch.Tensor,
                     settings: MutationSettings = MutationSettings()) -> MutantSet:
    """Draw candidates in seed order until `settings.target_mutants` pass the accept rule on the validation set."""
    _check_inputs(val_inputs, "mutation validation inputs")
    device = _device_of(model)
    val_inputs = val_inputs.to(device)
    val_labels = torch.as_tensor(val_labels, device=device).long().reshape(-1)
    if val_labels.numel() != val_inputs.shape[0]:
        raise UsageError(f"mutation validation labels: {val_labels.numel()} given, expected {val_inputs.shape[0]}")
    seeds: list[int] = []
    accs: list[float] = []
    drawn = 0
    with _Eval(model):
        original = (_predictions(model, val_inputs, settings.input_batch) == val_labels).double().mean().item()
        bar = settings.accept_ratio * original
        while len(seeds) < settings.target_mutants and drawn < settings.max_candidates:
            count = min(settings.mutant_batch, settings.max_candidates - drawn)
            batch_seeds = [candidate_seed(settings.seed, drawn + i) for i in range(count)]
            drawn += count
            preds = _batched_predictions(model, settings, batch_seeds, val_inputs)
            for s, acc in zip(batch_seeds, (preds == val_labels).double().mean(1).tolist()):
                if acc >= bar and len(seeds) < settings.target_mutants:
                    seeds.append(s)
                    accs.append(acc)
    if len(seeds) < settings.target_mutants:
        raise UsageError(f"only {len(seeds)} of {settings.target_mutants} {settings.operator} mutants "
                         f"(gamma {settings.gamma}) passed the accept rule in {drawn} candidates; "
                         f"expected a smaller gamma or more max_candidates")
    return MutantSet(settings=settings, seeds=tuple(seeds), accuracies=tuple(accs), original_accuracy=original,
                     candidates_drawn=drawn)


def label_change_rate(model: nn.Module, mutants: MutantSet, inputs: torch.Tensor) -> LabelChangeRate:
    """LCR of each input: the fraction of `mutants` whose top class differs from the model's prediction."""
    _check_inputs(inputs, "LCR inputs")
    inputs = inputs.to(_device_of(model))
    settings = mutants.settings
    with _Eval(model):
        original = _predictions(model, inputs, settings.input_batch)
        preds = _batched_predictions(model, settings, list(mutants.seeds), inputs)
    lcr = (preds != original[None]).double().mean(0)
    return LabelChangeRate(lcr=lcr, original=original, mutant_predictions=preds)
