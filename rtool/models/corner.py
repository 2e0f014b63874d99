"""The corner-case models trained with the authors' recipe (specs/corner_cases.md §B), seeded and cached.

The architecture is the authors' ConvNet (`corner_convnet`, 28x28 inputs) by default; any other classifier of
rtool's zoo by name (`shapes_cnn`, or a torchvision model such as resnet18 for CIFAR-10 or an image folder) is
built untrained for the data's classes and trained with the same recipe.

Recipe: `CornerConvNet` on raw [0, 1] pixels (no normalisation, no augmentation), cross-entropy, Adam with
a constant learning rate 2e-4 (default betas/eps, no weight decay), batch 128 reshuffled every epoch;
20 epochs on MNIST (the authors'), `DIGITS_EPOCHS` on the 1,437 `digits` training images (12 steps per
epoch instead of 469, so it needs more passes for a good test accuracy).
Determinism: `seed` fixes the initial weights (drawn in a forked RNG, so the caller's global RNG is
untouched), the batch order and the dropout masks; the same seed on the same device gives the same model,
and different seeds give the M independently trained models of the corner experiment.
Cache: `rtool.models.cached_model` keyed by the data's fingerprint (so a training set without the corner
cases is a different entry), its size and name, the recipe, the seed and the device type.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from rtool.data.classification import ClassificationData
from rtool.data.digits import load_digits
from rtool.errors import UsageError
from rtool.models.small import CornerConvNet, ShapesCNN
from rtool.models.train import cached_model, train_classifier
from rtool.models.zoo import build_model, check_model_name

CORNER_ARCHITECTURE = "corner_convnet"

MNIST_EPOCHS = 20
DIGITS_EPOCHS = 30
_INPUT_SIZE = (28, 28)


@dataclass(frozen=True)
class CornerTraining:
    """The authors' training settings; only `epochs` differs between datasets by default."""
    epochs: int = MNIST_EPOCHS
    lr: float = 2e-4
    batch_size: int = 128


def corner_training(dataset: str, epochs: int | None = None) -> CornerTraining:
    """The default recipe for `dataset` (20 epochs on mnist and any other data, `DIGITS_EPOCHS` on digits)."""
    default = DIGITS_EPOCHS if dataset == "digits" else MNIST_EPOCHS
    epochs = default if epochs is None else int(epochs)
    if epochs < 1:
        raise UsageError(f"epochs={epochs}: expected at least 1")
    return CornerTraining(epochs=epochs)


def corner_model_key(data: ClassificationData, seed: int, training: CornerTraining,
                     device: str | torch.device = "cpu", architecture: str = CORNER_ARCHITECTURE) -> dict:
    """Everything that changes the trained weights: the cache key of `train_corner_model`."""
    return {"model": architecture, "optimizer": "adam", "schedule": "constant", "training": asdict(training),
            "dataset": data.name, "split": data.split, "n": len(data), "data": data.fingerprint(),
            "image_shape": list(data.image_shape), "num_classes": data.num_classes, "seed": int(seed),
            "device": torch.device(device).type}


def build_corner_model(data: ClassificationData, seed: int, architecture: str = CORNER_ARCHITECTURE) -> nn.Module:
    """An untrained `architecture` for `data`'s channels and classes, its initial weights drawn from `seed`."""
    architecture = check_model_name(architecture)
    channels, height, width = data.image_shape
    if architecture == CORNER_ARCHITECTURE and (height, width) != _INPUT_SIZE:
        raise UsageError(f"{data.name} images are {channels}x{height}x{width}; the corner ConvNet expects "
                         f"{channels}x{_INPUT_SIZE[0]}x{_INPUT_SIZE[1]} (pass a torchvision model for other sizes, "
                         "e.g. resnet18)")
    small = {CORNER_ARCHITECTURE: CornerConvNet, "shapes_cnn": ShapesCNN}.get(architecture)
    if small is None and channels != 3:
        raise UsageError(f"{architecture} takes 3-channel images but {data.name} images are {channels}x{height}x"
                         f"{width}; expected corner_convnet or shapes_cnn for them")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if small is not None:
            return small(num_classes=data.num_classes, in_channels=channels)
        model = build_model(architecture, None, data.num_classes)
    _check_input_size(model, architecture, data)
    return model


def _check_input_size(model: nn.Module, architecture: str, data: ClassificationData) -> None:
    """One forward pass on two blank images: a network that downsamples past 1x1 fails here, in one line."""
    with torch.no_grad():
        try:
            model.eval()(torch.zeros(2, *data.image_shape))
        except RuntimeError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UsageError(f"{architecture} cannot take {data.name}'s {'x'.join(map(str, data.image_shape))} "
                             f"images ({first_line[:120]}); expected a model for that input size") from None


def train_corner_model(data: ClassificationData, *, seed: int = 0, training: CornerTraining | None = None,
                       device: str | torch.device = "cpu", progress: bool = True, cache: bool = True,
                       collective: bool = True, architecture: str = CORNER_ARCHITECTURE) -> nn.Module:
    """`architecture` (the authors' ConvNet by default) trained on `data` (raw [0, 1] images) with the authors'
    recipe; returned in eval mode on CPU.

    training: defaults to `corner_training(data.name)`. cache: load/store through `cached_model` (set False to
    always train, e.g. in benchmarks). collective: under torchrun, True = every rank asks for this same model
    and only rank 0 trains it; False = this rank trains its own (the M models of the corner experiment split
    over ranks by seed), no barrier.
    """
    if len(data) < 2:
        raise UsageError(f"{data.name} {data.split}: {len(data)} images; expected at least 2 to train on")
    training = training or corner_training(data.name)
    build = lambda: build_corner_model(data, seed, architecture)  # noqa: E731

    def fit(model: nn.Module) -> nn.Module:
        return train_classifier(model, data.images, data.labels, epochs=training.epochs, lr=training.lr,
                                batch_size=training.batch_size, weight_decay=0.0, seed=seed, device=device,
                                progress=progress, schedule="constant")

    if not cache:
        return fit(build()).cpu().eval()
    return cached_model(corner_model_key(data, seed, training, device, architecture), build, fit,
                        collective=collective).cpu().eval()


def digits_model(seed: int = 0, *, epochs: int | None = None, device: str | torch.device = "cpu",
                 progress: bool = True) -> nn.Module:
    """The embedded default model of `rtool corner`/`rtool detect`: the ConvNet trained on the digits train split."""
    return train_corner_model(load_digits("train"), seed=seed, training=corner_training("digits", epochs),
                                device=device, progress=progress)


@torch.no_grad()
def classification_accuracy(model: nn.Module, data: ClassificationData, *, batch_size: int = 512,
                            device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy of `model` (put in eval mode) on `data`; 0.0 for empty data."""
    if len(data) == 0:
        return 0.0
    device = torch.device(device)
    model = model.to(device).eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x = data.images[start:start + batch_size].to(device)
        y = data.labels[start:start + batch_size].to(device)
        logits = model(x)
        if logits.ndim != 2 or logits.shape[1] != data.num_classes:
            raise UsageError(f"model outputs {tuple(logits.shape)} for {data.name}; expected (batch, {data.num_classes})")
        correct += int((logits.argmax(1) == y).sum())
    return correct / len(data)
