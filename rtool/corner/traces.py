"""Activation traces (ATs): what surprise adequacy measures distances between (spec §A.1).

A trace is one vector per input: the outputs of one or more named layers, a conv output reduced to one
value per channel by its mean over all spatial positions, several layers concatenated in the order given;
or the model's output (`LOGITS`, the corner-case authors' choice).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from rtool.engine import progress
from rtool.errors import UsageError
from rtool.models import get_layer

LOGITS = "logits"


@dataclass(frozen=True)
class Traces:
    """Activation traces of N inputs.

    values: [N, D] (float32 unless asked otherwise), on the CPU; predictions: [N] int64, the argmax of
    the model's output for each input; labels: [N] int64 ground truth when the inputs carried labels
    (else None); layers: the layer names in concatenation order; widths: the features each layer gave.
    """

    values: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor | None
    layers: tuple[str, ...]
    widths: tuple[int, ...]

    def __len__(self) -> int:
        return self.values.shape[0]

    def subset(self, index: torch.Tensor | Sequence[int]) -> Traces:
        """The traces of the inputs at `index` (a row selection), same layers."""
        index = torch.as_tensor(index, dtype=torch.long)
        labels = None if self.labels is None else self.labels[index]
        return Traces(self.values[index], self.predictions[index], labels, self.layers, self.widths)


def _reduce(output: torch.Tensor) -> torch.Tensor:
    """[B, C, *spatial] -> [B, C] by the spatial mean; [B, F] stays; anything else is an error."""
    if not torch.is_tensor(output):
        raise UsageError(f"a traced layer returned {type(output).__name__}, expected a tensor")
    if output.dim() == 1:
        return output[:, None]
    if output.dim() == 2:
        return output
    return output.flatten(2).mean(dim=2)


def _batches(inputs, labels, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """(x, y) batches from a tensor, an indexable dataset, or an iterable of batches (a DataLoader)."""
    if torch.is_tensor(inputs):
        if labels is not None and len(labels) != len(inputs):
            raise UsageError(f"labels has {len(labels)} entries but inputs has {len(inputs)}")
        for start in range(0, len(inputs), batch_size):
            y = None if labels is None else torch.as_tensor(labels[start:start + batch_size])
            yield inputs[start:start + batch_size], y
        return
    if labels is not None:
        raise UsageError("labels= is only for a tensor of inputs; a dataset or loader brings its own labels")
    if hasattr(inputs, "__getitem__") and hasattr(inputs, "__len__"):
        inputs = torch.utils.data.DataLoader(inputs, batch_size=batch_size, shuffle=False)
    for item in inputs:
        if torch.is_tensor(item):
            yield item, None
        else:
            x, y = item[0], item[1] if len(item) > 1 else None
            yield x, (None if y is None else torch.as_tensor(y))


@contextlib.contextmanager
def _inference_state(model: nn.Module, dropout: bool) -> Iterator[None]:
    """Eval mode for the pass (dropout modules in train mode when `dropout`), the previous modes restored."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    if dropout:
        for module in model.modules():
            if isinstance(module, nn.modules.dropout._DropoutNd):
                module.train()
    try:
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode


def activation_traces(
    model: nn.Module,
    inputs: torch.Tensor | Iterable,
    layers: str | Sequence[str] = (LOGITS,),
    *,
    labels: torch.Tensor | None = None,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    dropout: bool = False,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    quiet: bool = True,
) -> Traces:
    """Run `model` over `inputs` once, in inference mode, and collect the traces of `layers`.

    inputs: a tensor [N, ...] of images (with optional `labels` [N]), an indexable dataset of (x, y), or
    an iterable of batches (x or (x, y), e.g. a DataLoader; keep it unshuffled so row i is input i).
    layers: a layer name or a list of them, dotted as in `rtool.models.get_layer` ("conv2", "fc1"), or
    `LOGITS` for the model's output; several names are concatenated in the given order. An unknown name
    is a UsageError naming it. The model runs in eval mode on `device` (default: where its parameters
    are); `dropout=True` keeps its dropout layers active, the reference code's quirk (spec §B.1), with
    the random masks drawn from `seed`. Values come back on the CPU in `dtype`.
    """
    names = (layers,) if isinstance(layers, str) else tuple(layers)
    if not names:
        raise UsageError("layers is empty; expected one or more layer names or 'logits'")
    hooked = {name: get_layer(model, name) for name in dict.fromkeys(names) if name != LOGITS}
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)

    captured: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in hooked.items():
        def hook(_module, _args, output, name=name):
            captured[name] = _reduce(output[0] if isinstance(output, (tuple, list)) else output)
        handles.append(module.register_forward_hook(hook))

    parts: list[torch.Tensor] = []
    predictions: list[torch.Tensor] = []
    truths: list[torch.Tensor] = []
    missing_labels = False
    rng = torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])
    try:
        with rng, _inference_state(model, dropout), torch.inference_mode():
            torch.manual_seed(seed)
            for x, y in progress(_batches(inputs, labels, batch_size), desc="activation traces", quiet=quiet,
                                 unit="batch"):
                captured.clear()
                output = model(x.to(device))
                logits = output[0] if isinstance(output, (tuple, list)) else output
                captured[LOGITS] = _reduce(logits)
                parts.append(torch.cat([captured[name].to("cpu", dtype) for name in names], dim=1))
                predictions.append(logits.argmax(dim=1).cpu())
                if y is None:
                    missing_labels = True
                else:
                    truths.append(y.reshape(-1).to("cpu", torch.long))
    finally:
        for handle in handles:
            handle.remove()

    if not parts:
        raise UsageError("inputs is empty; expected at least one input to trace")
    values = torch.cat(parts)
    widths = tuple(captured[name].shape[1] for name in names)
    label_tensor = None if missing_labels or not truths else torch.cat(truths)
    return Traces(values, torch.cat(predictions), label_tensor, names, widths)
