"""Model mutants and the label change rate (specs/conductance_lcr.md, section b).

The unit of mutation is one output channel (filter) of a convolution (every `nn.Conv1d/2d/3d`, not transposed);
Linear, batch-norm layers and conv biases are left alone except where an operator says otherwise.
A mutant is fully determined by (operator, gamma, seed) and is never stored as a model: only the few conv weights
it changes are built, from the clean weights, when it is evaluated.

On a CPU, where `torch.fx` can trace the model and it ends in a linear layer, mutants are evaluated by propagating
only what they change (`_Propagation`). The clean forward runs once per input batch and keeps every node's value;
for a mutant each node is then unchanged, changed only on a set S of channels (only those channels' new values are
kept) or dense (a new tensor):
- a mutated convolution recomputes its changed output channels (those of all mutants in one convolution);
- channel-local nodes (elementwise activations, pooling, eval batch norm, eval dropout, identity, reductions over
  spatial dimensions, flatten, adding an unchanged tensor) act on the S slice only;
- an unmutated convolution or linear layer whose input changed on S adds op(new_S - clean_S), with the weight's
  input slice for S (after a flatten, the columns of those channels), to its clean output: a conv1 mutant of the
  corner ConvNet so costs conv2 with 1 or 2 input channels instead of 24;
- a chain of linear layers with only identities (eval dropout) between them is one affine map, composed once in
  float64 (fc2 o fc1 of the corner ConvNet is 10 x 3136);
- anything else runs as usual on the materialised dense values.
The result differs from the dense loop's logits by float32 rounding, so a mutant's top class is taken from it only
where the top-2 margin exceeds _TAU x S(z), S(z) = max_i(a_i ||z|| + c_i) for the input z of the final affine map,
a and c bounding the absolute terms of the unfolded chain (one layer: a_i = ||W_i||, c_i = |b_i|; a layer after it:
a' = |W'| a, c' = |W'| c + |b'|). The other inputs are recomputed by the dense path (`_Graph._logits_one_by_one`: a
pass from the mutant's first mutated layer, recomputing only the changed channels of that layer, bit for bit the
loop's arithmetic), all uncertain inputs of a mutant in one pass, padded with other inputs to _RECHECK_ROWS rows
(a linear layer's last bits depend on the row count below about 20); `LabelChangeRate.rechecked` is their fraction.
A mutant that changes a linear layer uses the dense path throughout. Models the propagation does not cover (an
output that is not a linear layer, a node that writes into a value read later) use the dense path for every mutant;
on CUDA, and for models fx cannot trace, `torch.func.functional_call` runs on stacked conv weights under `torch.vmap`,
`mutant_batch` mutants at a time, the layers before the first mutated one once for all of them (traced models).

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
import operator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
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
    mutant_batch: int = 10         # mutants per vmapped pass (CPU: per convolution of their changed channels)
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
    """LCR per input (N,), the original predictions (N,), each mutant's predictions (M, N) and how many of
    them the CPU propagation left to the dense path."""

    lcr: torch.Tensor
    original: torch.Tensor
    mutant_predictions: torch.Tensor
    rechecked: float = 0.0  # fraction of the (mutant, input) decisions the CPU propagation left to the dense path


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
            elif node.op == "output":
                return args[0]
            else:
                env[node] = self.execute(node, args, kwargs, params)
        return env

    def execute(self, node, args, kwargs, params=None):
        """Node `node` (call_module, call_function or call_method) on resolved arguments; a called module uses
        its entries of `params` (dotted names) in place of its own parameters."""
        if node.op == "call_module":
            module = self.model.get_submodule(node.target)
            prefix = node.target + "."
            own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)} if params else None
            return functional_call(module, own, args, kwargs) if own else module(*args, **kwargs)
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        return getattr(args[0], node.target)(*args[1:], **kwargs)

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


# A fast decision is certified when its top-2 margin exceeds _TAU x the scale S of `_Propagation` (a float32 figure,
# scaled by the model's eps otherwise). Measured max |fast - dense| / S: 1.6e-9 on the LCR bench (CornerConvNet, NAI,
# GF, WS, NS), 3.5e-8 and 1.0e-7 on the small nets of tests/detect/test_mutation.py, so _TAU (84 float32 eps) is
# 6,000x and 100x above those. The bench rechecks 1 % of its decisions.
_TAU = 1e-5
# The uncertain inputs of a mutant are recomputed together, with other inputs of their batch added up to this many
# rows: a linear layer's last bits depend on the number of rows below about 20 here (MKL), and subsets of 20 or more
# rows gave the full batch's logits bit for bit in every model of the tests and the bench.
_RECHECK_ROWS = 32
# Bytes the clean pass may keep (every node's value for one input batch): the corner ConvNet needs about 0.3 MB a row,
# a resnet18 at 224² about 10 MB, so 256 rows of it would take 2.5 GB.
_CLEAN_VALUES_BUDGET = 1 << 30

_ELEMENTWISE_MODULES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
                        nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Identity,
                        nn.modules.dropout._DropoutNd)
_POOL_MODULES = ((nn.MaxPool1d, 1), (nn.MaxPool2d, 2), (nn.MaxPool3d, 3), (nn.AvgPool1d, 1), (nn.AvgPool2d, 2),
                 (nn.AvgPool3d, 3), (nn.AdaptiveAvgPool1d, 1), (nn.AdaptiveAvgPool2d, 2), (nn.AdaptiveAvgPool3d, 3),
                 (nn.AdaptiveMaxPool1d, 1), (nn.AdaptiveMaxPool2d, 2), (nn.AdaptiveMaxPool3d, 3))
_ELEMENTWISE_FUNCTIONS = {torch.relu, torch.relu_, F.relu, F.relu_, torch.sigmoid, torch.tanh, F.gelu, F.silu,
                          F.leaky_relu, F.elu, F.hardtanh, F.relu6, F.hardswish, F.mish, F.softplus}
_POOL_FUNCTIONS = {F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3, F.avg_pool1d: 1, F.avg_pool2d: 2,
                   F.avg_pool3d: 3, F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3}
_ELEMENTWISE_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "contiguous"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", torch.mean, torch.sum, torch.amax, torch.amin}
_ADDS = {operator.add, operator.iadd, torch.add}
_FLATTENS = {"flatten", torch.flatten}


class _Sparse:
    """A value equal to the clean one except on channels `index` (dim 1), whose new values are `values`
    (N, |index|, ...); after a flatten, `block` is the number of columns per channel and values is
    (N, |index|, block)."""

    __slots__ = ("index", "values", "block")

    def __init__(self, index, values, block=None):
        self.index, self.values, self.block = index, values, block

    def clean_part(self, clean):
        if self.block is not None:
            clean = clean.reshape(clean.shape[0], -1, self.block)
        return clean.index_select(1, self.index)

    def dense(self, clean):
        out = clean.clone()
        target = out if self.block is None else out.view(out.shape[0], -1, self.block)
        target.index_copy_(1, self.index, self.values)
        return out


@dataclass
class _Plan:
    """One mutant: its parameters, the first node that reads one of them, per mutated plain convolution node
    (changed output channels, their weights and biases, the whole weight and bias), the module nodes whose
    parameters it changes, and `exact` when it changes something the propagation does not model (a linear layer:
    then the dense path decides every input)."""

    params: dict
    first: int
    convs: dict
    mutated: set
    exact: bool


def _nodes_in(value) -> list:
    found = []
    torch.fx.node.map_arg(value, found.append)
    return found


class _Propagation:
    """Mutants evaluated by propagating only what they change through the fx graph (see the module docstring)."""

    def __init__(self, graph: _Graph, example: torch.Tensor) -> None:
        self.graph, self.model, self.nodes = graph, graph.model, graph.nodes
        if any(m.training for m in self.model.modules()):
            raise ValueError("a module is in training mode")
        self.position = {node: i for i, node in enumerate(self.nodes)}
        outputs = [n for n in self.nodes if n.op == "output"]
        if len(outputs) != 1 or not isinstance(outputs[0].args[0], torch.fx.Node):
            raise ValueError("the model does not return one tensor")
        self.output = outputs[0].args[0]
        self.inplace, values = self._inplace_nodes(example)
        logits = values[self.output]
        kept = sum(v.numel() * v.element_size() for v in values.values() if isinstance(v, torch.Tensor))
        self.bytes_per_row = max(1, kept // max(1, example.shape[0]))  # what the clean pass keeps per input
        if logits.dim() != 2:
            raise ValueError("the model's output is not (N, classes)")
        self.kind = {node: self._classify(node) for node in self.nodes}
        self._fold()
        if self.kind[self.output][0] != "affine":
            raise ValueError("the model does not end with a linear layer")
        _, weight, _, self.final_input, self.scale_a, self.scale_c = self.kind[self.output]
        if not weight.is_floating_point():
            raise ValueError("integer weights")
        self.tau = _TAU * torch.finfo(weight.dtype).eps / torch.finfo(torch.float32).eps
        self.scale_a, self.scale_c = self.scale_a.to(weight.dtype), self.scale_c.to(weight.dtype)

    # --- analysis, once per model ---------------------------------------------------------------------------------
    def _inplace_nodes(self, example) -> tuple[set, dict]:
        """(nodes that write into one of their inputs, every node's value at `example`), the first found from the
        version counters on that small forward pass.
        Their inputs are cloned so that every clean value stays; sound only when nothing reads a written value later."""
        env, inplace = {}, set()
        for i, node in enumerate(self.nodes):
            if node.op == "output":
                break
            versions = {n: v._version for n, v in env.items() if isinstance(v, torch.Tensor)}
            self.graph._run([node], env, {"__input__": example})
            written = [n for n, v in versions.items() if env[n]._version != v]
            if written:
                inplace.add(node)
                if any(self.position[user] > i for n in written for user in n.users):
                    raise ValueError(f"node {node.name} writes into a value read later")
        return inplace, env

    def _classify(self, node):
        if node.op not in ("call_module", "call_function", "call_method"):
            return ("other",)
        args, kwargs = node.args, node.kwargs
        one = bool(args) and isinstance(args[0], torch.fx.Node) and not _nodes_in((args[1:], kwargs))
        if node.op == "call_module":
            module = self.model.get_submodule(node.target)
            if not one or len(args) != 1 or kwargs:
                return ("other",)
            if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed and module.groups == 1:
                return ("conv", module)
            if isinstance(module, nn.Linear):
                return ("linear", module)
            if isinstance(module, _ELEMENTWISE_MODULES):
                return ("local", 0, isinstance(module, (nn.Identity, nn.modules.dropout._DropoutNd)))
            if isinstance(module, nn.MaxPool2d) and not module.return_indices and not module.ceil_mode \
                    and _pair(module.padding) == (0, 0) and _pair(module.dilation) == (1, 1):
                return ("local", 2, False, _pair(module.kernel_size), _pair(module.stride or module.kernel_size))
            for cls, dims in _POOL_MODULES:
                if isinstance(module, cls) and not getattr(module, "return_indices", False):
                    return ("local", dims, False)
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_mean is not None:
                return ("bn", module)
            if isinstance(module, nn.Flatten) and module.start_dim == 1 and module.end_dim == -1:
                return ("flatten",)
            return ("other",)
        target = node.target
        if target in _ADDS and len(args) == 2 and not kwargs and all(isinstance(a, torch.fx.Node) for a in args):
            return ("add",)
        if not one:
            return ("other",)
        if target in _ELEMENTWISE_FUNCTIONS or node.op == "call_method" and target in _ELEMENTWISE_METHODS:
            return ("local", 0, target == "contiguous")
        if node.op == "call_function" and target in _POOL_FUNCTIONS and len(args) <= 6 \
                and not kwargs.get("return_indices", False):
            return ("local", _POOL_FUNCTIONS[target], False)
        if target in _FLATTENS and set(kwargs) <= {"start_dim", "end_dim"} and len(args) <= 3:
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            return ("flatten",) if (start, end) == (1, -1) else ("other",)
        if target in _REDUCTIONS and set(kwargs) <= {"dim", "keepdim"} and len(args) <= 3:
            dims = args[1] if len(args) > 1 else kwargs.get("dim")
            dims = (dims,) if isinstance(dims, int) else dims
            if isinstance(dims, (tuple, list)) and dims and all(isinstance(d, int) for d in dims):
                return ("reduce", tuple(dims))
        return ("other",)

    def _fold(self) -> None:
        """Every linear layer becomes ("affine", weight, bias, source node, a, c); a linear layer fed (through
        identities only) by an affine node that nothing else reads absorbs it: one map from the chain's input."""
        for node in self.nodes:
            kind = self.kind[node]
            if kind[0] != "linear":
                continue
            weight = kind[1].weight.detach()
            bias = kind[1].bias.detach() if kind[1].bias is not None else None
            w64 = weight.double()
            b64 = bias.double() if bias is not None else torch.zeros(w64.shape[0], dtype=torch.float64)
            middle, walk = [], node.args[0]
            while self.kind[walk][0] == "local" and self.kind[walk][2] and len(walk.users) == 1:
                middle.append(walk)
                walk = walk.args[0]
            prev = self.kind[walk]
            if prev[0] == "affine" and len(walk.users) == 1:
                _, w_prev, b_prev, source, a_prev, c_prev = prev
                absw = w64.abs()
                a, c = absw @ a_prev, absw @ c_prev + b64.abs()
                if b_prev is not None:
                    b64 = w64 @ b_prev.double() + b64
                w64 = w64 @ w_prev.double()
                for m in middle + [walk]:
                    self.kind[m] = ("skip",)
                self.kind[node] = ("affine", w64.to(weight.dtype), b64.to(weight.dtype), source, a, c)
            else:
                self.kind[node] = ("affine", weight, bias, node.args[0], w64.norm(dim=1), b64.abs())

    def plan(self, params: dict) -> _Plan:
        first = self.graph.cut(params)
        convs, mutated, exact = {}, set(), False
        for node in self.nodes[first:]:
            if node.op != "call_module":
                continue
            prefix = node.target + "."
            own = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
            if not own:
                continue
            kind = self.kind[node]
            if kind[0] == "conv" and set(own) <= {"weight", "bias"}:
                module = kind[1]
                weight = own.get("weight", module.weight).detach()
                bias = own.get("bias", module.bias)
                changed = (weight != module.weight).flatten(1).any(1)
                if bias is not None and module.bias is not None:
                    changed |= bias != module.bias
                rows = changed.nonzero()[:, 0]
                if rows.numel():
                    convs[node] = (rows, weight[rows], None if bias is None else bias[rows], weight, bias)
                    mutated.add(node)
            elif kind[0] in ("affine", "skip"):
                exact = True
            else:
                mutated.add(node)
        return _Plan(params=params, first=first, convs=convs, mutated=mutated, exact=exact)

    # --- evaluation -----------------------------------------------------------------------------------------------
    def clean(self, x) -> dict:
        """Every node's clean value on the batch `x` (the inputs of writing nodes are cloned first)."""
        env = {}
        for node in self.nodes:
            if node.op == "output":
                break
            if node in self.inplace:
                args = torch.fx.node.map_arg(node.args, lambda n: _clone(env[n]))
                kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: _clone(env[n]))
                env[node] = self.graph.execute(node, args, kwargs)
            else:
                self.graph._run([node], env, {"__input__": x})
        return env

    def logits(self, plan: _Plan, clean: dict, batch: dict, rows: dict):
        """(logits, norm of the final affine map's input per row) of mutant `plan`, or None when its output is
        the clean one bit for bit. `batch` holds the clean input norms and the clean values' storages; `rows`, per
        mutated convolution node, its changed output channels computed from the clean input, and under "head" the
        state at the end of the channel-local chain after the first node (see `_clean_rows`)."""
        state, norm, resume = {}, None, -1
        if "head" in rows:
            node, state[node] = rows["head"]
            resume = self.position[node]
        for node in self.nodes[plan.first:]:
            if node.op in ("placeholder", "output"):
                if node.op == "output":
                    break
                continue
            if node.op == "get_attr":
                if node.target in plan.params:
                    state[node] = plan.params[node.target]
                continue
            kind = self.kind[node]
            if kind[0] == "skip" or self.position[node] <= resume:
                continue
            if kind[0] == "affine":
                if kind[3] in state:
                    final = node is self.output
                    state[node], z_norm = self._affine(node, kind, state[kind[3]], clean, batch, final)
                    norm = z_norm if final else norm
                continue
            mutated = node in plan.mutated
            if not mutated and not any(n in state for n in node.all_input_nodes):
                continue
            state[node] = self._propagate(node, kind, state, clean, plan, mutated, batch, rows)
        return (state[self.output], norm) if self.output in state else None

    def _propagate(self, node, kind, state, clean, plan, mutated, batch, clean_rows):
        source = node.args[0] if node.args and isinstance(node.args[0], torch.fx.Node) else None
        if kind[0] == "add" and source not in state:
            source = node.args[1]
        st = state.get(source)
        sparse = isinstance(st, _Sparse)
        if kind[0] == "conv":
            module, conv = kind[1], plan.convs.get(node)
            if not mutated:
                if sparse and st.block is None:
                    delta = st.values - st.clean_part(clean[source])
                    out = module._conv_forward(delta, module.weight.index_select(1, st.index), None)
                    return out.add_(clean[node])
            elif conv is not None:
                rows, _, _, weight, bias = conv
                if st is None:
                    return _Sparse(rows, clean_rows[node])
                if sparse and st.block is None:  # conv(new x, new w) = conv(clean x, new w) + conv(x - clean x, new w)
                    delta = st.values - st.clean_part(clean[source])
                    out = module._conv_forward(delta, weight.index_select(1, st.index), None)
                    changed = out.index_select(1, rows).add_(clean_rows[node])
                    return out.add_(clean[node]).index_copy_(1, rows, changed)
                return module._conv_forward(st.dense(clean[source]) if sparse else st, weight, bias)
        elif not mutated and st is not None and len([n for n in node.all_input_nodes if n in state]) == 1:
            if sparse:
                values = self._channel_local(node, kind, st, clean, state)
                if values is not None:
                    return values
            elif len(kind) == 5 and st.dim() == 4:
                return _max_pool2d(st, kind[3], kind[4])
        return self._dense(node, state, clean, plan, batch)

    def _channel_local(self, node, kind, st, clean, state):
        """The sparse result of a channel-local node on a sparse input, or None where it is not channel-local."""
        source = node.args[0]
        ndim = clean[source].dim()
        channels = st.block is None
        if kind[0] == "local" and (kind[1] == 0 or channels and ndim >= kind[1] + 2):
            if len(kind) == 5 and ndim == 4:
                return _Sparse(st.index, _max_pool2d(st.values, kind[3], kind[4]))
            return _Sparse(st.index, self.graph.execute(node, (st.values,) + tuple(node.args[1:]), node.kwargs),
                           st.block)
        if kind[0] == "bn" and channels and ndim >= 2:
            m, i = kind[1], st.index
            values = F.batch_norm(st.values, m.running_mean[i], m.running_var[i],
                                  None if m.weight is None else m.weight[i], None if m.bias is None else m.bias[i],
                                  False, 0.0, m.eps)
            return _Sparse(i, values, None)
        if kind[0] == "flatten":
            if not channels or ndim <= 2:
                return st
            values = st.values.reshape(st.values.shape[0], st.values.shape[1], -1)
            return _Sparse(st.index, values, values.shape[2])
        if kind[0] == "reduce" and channels and all(d % ndim >= 2 for d in kind[1]):
            return _Sparse(st.index, self.graph.execute(node, (st.values,) + tuple(node.args[1:]), node.kwargs))
        if kind[0] == "add":
            a, b = node.args
            other = b if a is source else a
            if other is source or other in state or clean[other].shape != clean[source].shape \
                    or clean[node].shape != clean[source].shape:
                return None
            return _Sparse(st.index, st.values + st.clean_part(clean[other]), st.block)
        return None

    def _affine(self, node, kind, st, clean, batch, final):
        """(new output, for the final node an upper bound of the new input's norm per row) of an affine node whose
        input changed."""
        _, weight, bias, source, _, _ = kind
        z = clean[source]
        if isinstance(st, _Sparse) and z.dim() == 2:
            n, count = st.values.shape[:2]
            block = st.values[0, 0].numel() if count else 1
            cols = (st.index[:, None] * block + torch.arange(block, device=z.device)).reshape(-1)
            delta = (st.values - st.clean_part(z)).reshape(n, -1)
            out = torch.addmm(clean[node], delta, weight.index_select(1, cols).t())
            if not final:
                return out, None
            # the clean norm with the new channels' squares added
            return out, (batch["norm"].square() + st.values.reshape(n, -1).square().sum(1)).sqrt()
        z = st.dense(z) if isinstance(st, _Sparse) else st
        return F.linear(z, weight, bias), z.norm(dim=-1) if final else None

    def _dense(self, node, state, clean, plan, batch):
        def value(n):
            st = state.get(n)
            v = clean[n] if st is None else st.dense(clean[n]) if isinstance(st, _Sparse) else st
            if node in self.inplace and isinstance(v, torch.Tensor) and _storage(v) in batch["storages"]:
                return v.clone()  # never write into a clean value
            return v

        args = torch.fx.node.map_arg(node.args, value)
        kwargs = torch.fx.node.map_arg(node.kwargs, value)
        return self.graph.execute(node, args, kwargs, plan.params)

    def fast_logits(self, plans: list[_Plan], x: torch.Tensor, group: int = 10):
        """(clean logits, per plan None (exact plans), "clean" (output unchanged) or (logits, scale)) on batch x;
        the changed channels of mutated convolutions are computed for `group` plans at a time."""
        clean = self.clean(x)
        batch = {"norm": clean[self.final_input].norm(dim=-1),
                 "storages": {_storage(v) for v in clean.values() if isinstance(v, torch.Tensor)}}
        results = []
        for m, plan in enumerate(plans):
            if m % group == 0:
                clean_rows = self._clean_rows(plans[m:m + group], clean)
            result = None if plan.exact else self.logits(plan, clean, batch, clean_rows[m % group])
            if result is not None:
                logits, norm = result
                result = logits, (self.scale_a * norm[:, None] + self.scale_c).amax(1)
            results.append(None if plan.exact else "clean" if result is None else result)
        return clean[self.output], results

    def predictions(self, plans: list[_Plan], inputs: torch.Tensor, batch: int, group: int, stats: dict):
        """(mutant predictions (M, N), the clean model's predictions (N,)); `stats` counts the decisions and those
        recomputed by the dense path."""
        preds = torch.empty((len(plans), inputs.shape[0]), dtype=torch.long, device=inputs.device)
        original = torch.empty(inputs.shape[0], dtype=torch.long, device=inputs.device)
        uncertain: list[list[torch.Tensor]] = [[] for _ in plans]
        # the clean pass keeps every node's value: fewer rows a pass where they would not fit the budget
        batch = max(1, min(batch, _CLEAN_VALUES_BUDGET // self.bytes_per_row))
        for start in range(0, inputs.shape[0], batch):
            x = inputs[start:start + batch]
            clean_logits, results = self.fast_logits(plans, x, group)
            clean_pred = clean_logits.argmax(-1)
            original[start:start + batch] = clean_pred
            for m, (plan, result) in enumerate(zip(plans, results)):
                stats["decisions"] += x.shape[0]
                if result is None:
                    preds[m, start:start + batch] = self.graph._logits_one_by_one([plan.params], x)[0].argmax(-1)
                    stats["rechecked"] += x.shape[0]
                    continue
                if isinstance(result, str):
                    preds[m, start:start + batch] = clean_pred
                    continue
                logits, scale = result
                pred = logits.argmax(-1)
                if logits.shape[1] > 1:
                    top = logits.topk(2, dim=1).values
                    rows = (~(top[:, 0] - top[:, 1] > self.tau * scale)).nonzero()[:, 0]  # NaN margins too
                    uncertain[m].append(rows + start)
                preds[m, start:start + batch] = pred
        for plan, m_preds, rows in zip(plans, preds, uncertain):  # all uncertain inputs of a mutant in one pass
            rows = torch.cat(rows) if rows else torch.empty(0, dtype=torch.long)
            stats["rechecked"] += rows.numel()
            for i in range(0, rows.numel(), batch):
                part = rows[i:i + batch]
                dense = self.graph._logits_one_by_one([plan.params], inputs[_padded(part, inputs.shape[0])])[0]
                m_preds[part] = dense[:part.numel()].argmax(-1)
        return preds, original

    def _clean_rows(self, plans, clean) -> list:
        """Per plan {mutated convolution node: its changed output channels on the clean input}, all plans' channels
        of a node in one channels-last convolution: on this CPU a convolution with 1 to 16 output channels costs
        about as much as one with 16 (4 ms here for conv2 on 256 inputs), and channels-last halves a wide one.
        For the plans whose first node it is, the channel-local nodes that follow it in a chain run once on all
        their channels together, and "head" is (the chain's last node, the plan's sparse state there)."""
        groups: dict = {}
        for m, plan in enumerate(plans):
            if not plan.exact:
                for node in plan.convs:
                    groups.setdefault(node, []).append(m)
        rows = [{} for _ in plans]
        for node, members in groups.items():
            heads = [m for m in members if plans[m].first == self.position[node]]
            members = heads + [m for m in members if m not in heads]
            module, convs = self.kind[node][1], [plans[m].convs[node] for m in members]
            weight = torch.cat([c[1] for c in convs])
            bias = None if convs[0][2] is None else torch.cat([c[2] for c in convs])
            x = clean[node.args[0]]
            if x.dim() == 4:
                x, weight = (t.contiguous(memory_format=torch.channels_last) for t in (x, weight))
            out = module._conv_forward(x, weight, bias)
            counts = [c[0].numel() for c in convs]
            for m, part in zip(members, out.split(counts, 1)):
                rows[m][node] = part
            if heads:
                end, st = self._chain(node, _Sparse(torch.cat([c[0] for c in convs[:len(heads)]]),
                                                    out[:, :sum(counts[:len(heads)])]), clean, plans, heads)
                for m, conv, values in zip(heads, convs, st.values.split(counts[:len(heads)], 1)):
                    rows[m]["head"] = (end, _Sparse(conv[0], values, st.block))
        return rows

    def _chain(self, node, st, clean, plans, members):
        """(last node, its sparse state) of the channel-local nodes after `node` that each read only the one
        before, which nothing else reads, and that no member plan mutates."""
        while len(node.users) == 1:
            user = next(iter(node.users))
            kind = self.kind[user]
            if kind[0] not in ("local", "bn", "flatten", "reduce") or user.all_input_nodes != [node] \
                    or any(user in plans[m].mutated for m in members):
                break
            values = self._channel_local(user, kind, st, clean, {})
            if values is None:
                break
            node, st = user, values
        return node, st


def _padded(rows, n):
    """`rows` followed by the first other rows of a batch of n, up to _RECHECK_ROWS rows in all."""
    if rows.numel() >= min(_RECHECK_ROWS, n):
        return rows
    others = torch.ones(n, dtype=torch.bool, device=rows.device)
    others[rows] = False
    return torch.cat([rows, others.nonzero()[:min(_RECHECK_ROWS, n) - rows.numel(), 0]])


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _max_pool2d(x, kernel, stride):
    """max_pool2d without padding, dilation or ceil mode as maxima of strided views: the same values (a maximum is
    exact, NaN propagates), about 10x faster than the NCHW kernel on this CPU (0.8 vs 8.9 ms for 256x64x14x14)."""
    for dim, k, s in ((2, kernel[0], stride[0]), (3, kernel[1], stride[1])):
        size = (x.shape[dim] - k) // s + 1
        parts = [x.narrow(dim, i, s * (size - 1) + 1)[(slice(None),) * dim + (slice(None, None, s),)]
                 for i in range(k)]
        x = parts[0]
        for part in parts[1:]:
            x = torch.maximum(x, part)
    return x.clone() if tuple(kernel) == (1, 1) else x  # never a view of the input, like max_pool2d


def _clone(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


def _storage(value):
    return value.untyped_storage().data_ptr()


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


def _engine(model, inputs):
    """(fx graph or None, CPU propagation or None) of `model` for inputs like `inputs`."""
    graph = _graph_of(model)
    return graph, _propagation_of(graph, inputs) if inputs.device.type == "cpu" else None


def _batched_predictions(model, settings, seeds, inputs, stats=None, engine=None):
    """(mutant predictions (M, N), the clean model's predictions (N,) or None where they were not computed)."""
    graph, propagation = engine or _engine(model, inputs)
    params = [mutant_parameters(model, settings.operator, settings.gamma, s) for s in seeds]
    if propagation is not None:
        stats = {"decisions": 0, "rechecked": 0} if stats is None else stats
        return propagation.predictions([propagation.plan(p) for p in params], inputs, settings.input_batch,
                                       settings.mutant_batch, stats)
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
    return preds, None


def _propagation_of(graph, inputs):
    if graph is None or not inputs.dtype.is_floating_point:
        return None
    try:
        return _Propagation(graph, inputs[:2].clone())
    except Exception:  # a model the propagation does not cover runs the dense path
        return None


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
        engine = _engine(model, val_inputs)
        while len(seeds) < settings.target_mutants and drawn < settings.max_candidates:
            count = min(settings.mutant_batch, settings.max_candidates - drawn)
            batch_seeds = [candidate_seed(settings.seed, drawn + i) for i in range(count)]
            drawn += count
            preds, _ = _batched_predictions(model, settings, batch_seeds, val_inputs, engine=engine)
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
    stats = {"decisions": 0, "rechecked": 0}
    with _Eval(model):
        preds, original = _batched_predictions(model, settings, list(mutants.seeds), inputs, stats)
        if original is None:
            original = _predictions(model, inputs, settings.input_batch)
    lcr = (preds != original[None]).double().mean(0)
    return LabelChangeRate(lcr=lcr, original=original, mutant_predictions=preds,
                           rechecked=stats["rechecked"] / max(stats["decisions"], 1))
