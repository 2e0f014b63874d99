"""The overlapping score of two corruptions (spec noc.md §4): train one model per corruption plus a clean one,
fill the accuracy matrix, and compare robustness gains.

    from rtool.noc.overlap import OverlapSettings, run_overlap, shapes_overlap_data
    train, test = shapes_overlap_data()
    result = run_overlap(train, test, OverlapSettings(corruptions=("gaussian", "blur")), out_dir="out")
    result.accuracy      # [M, C]: model trained with rows[m] (row 0: clean), tested under conditions[c]
    result.overlap       # [K, K]: O(i, j) in the settings' form (NaN where undefined)

Training protocol (§4.1): each epoch is the training set twice, once corrupted (fresh parameters every epoch)
and once clean, shuffled together; random horizontal flips; no normalisation. SGD lr 0.1, momentum 0.9,
weight decay 1e-4, lr x0.1 at 50% and 75% of the epochs (the paper's 20 and 30 of 40) with the optimizer
recreated at each decay, as train.py does. This needs a fresh corrupted copy per epoch and the step schedule,
which `rtool.models.train_classifier` (one fixed tensor, AdamW) cannot express, hence the loop here.

Deviations from the reference, on purpose: everything is seeded (each model starts from the same initial
weights and sees the same shuffles and flips, so only the corruption differs); every test condition is the
same corrupted copy of the test set for every model (the reference redraws per pass); the whole test set is
scored (no drop_last).

Resumable: each trained model and each accuracy cell is written to `out_dir` (atomically) as soon as it
exists, under a hash of everything that made it; a rerun loads them. Under torchrun the models (with their
rows of the matrix) are spread over the ranks; rank 0 merges the rows, equal to a one-process run.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

import rtool
from rtool.data.classification import ClassificationData
from rtool.engine.distributed import current, gather_to_rank0, shard_bounds
from rtool.engine.hashing import stable_hash
from rtool.engine.io import atomic_save_torch, atomic_write_json
from rtool.engine.progress import progress
from rtool.engine.seed import generator, seed_everything
from rtool.errors import UsageError
from rtool.models.zoo import build_model, check_model_name
from rtool.noc.corruptions import MODES, corrupt
from rtool.noc.params import CORRUPTIONS, MIN_SIDE, check_name

FORMS = ("standard", "bmvc2021")
OPTIMIZERS = ("sgd-step", "adamw-onecycle")
INITS = ("paper", "model")
CLEAN = "none"
# Two noises (expected to overlap), a blur and a lighting change, all scale-free (the pixel sizes of the stamp
# and warp corruptions are meant for 224² and swamp small 32² images). The clean shapes CNN loses 12-31 points
# of accuracy under each, and the embedded default (5 models) runs in about 4 minutes on one CPU core.
DEFAULT_CORRUPTIONS = ("gaussian", "salt_pepper", "blur", "contrast")
_CORRUPT_CHUNK = 512  # images corrupted per call (bounds the temporary memory)


@dataclass(frozen=True)
class OverlapSettings:
    """What changes the trained models and the matrix (all of it is in the resume keys except `form`,
    `epsilon` and the batch size of evaluation). The defaults are the embedded default's recipe (a small CNN
    that must learn in a dozen epochs on CPU); the paper's is optimizer="sgd-step", epochs=40, batch_size=256,
    init="paper", model="resnet18" at 224²."""

    corruptions: tuple[str, ...] = DEFAULT_CORRUPTIONS
    model: str = "shapes_cnn"
    epochs: int = 12                    # the paper: 40
    batch_size: int = 128               # the paper: 256
    optimizer: str = "adamw-onecycle"   # or "sgd-step": the paper's SGD with step decays (slower to converge)
    lr: float | None = None             # None: 0.1 for sgd-step (the paper), 3e-3 for adamw-onecycle
    momentum: float = 0.9
    weight_decay: float = 1e-4
    init: str = "model"                 # the model's own init, or "paper": Xavier conv/linear, linear bias 0.01,
                                        # BN weight ~N(1, 0.02)
    flip: bool = True                   # random horizontal flips in training (train.py)
    mode: str = "fast"                  # corruption mode (rtool.noc.MODES)
    seed: int = 0
    eval_batch_size: int = 256
    form: str = "standard"              # which overlap form `OverlapResult.overlap` returns
    epsilon: float = 1e-6               # a robustness gain at or below this leaves the overlap undefined

    def __post_init__(self) -> None:
        names = tuple(self.corruptions)
        if not names:
            raise UsageError("corruptions: expected at least one corruption name")
        for name in names:
            if name == CLEAN:
                raise UsageError("corruptions: 'none' is the clean condition and always included; drop it")
            check_name(name)
        if len(set(names)) != len(names):
            raise UsageError(f"corruptions {','.join(names)}: a corruption is listed twice")
        object.__setattr__(self, "corruptions", tuple(n for n in CORRUPTIONS if n in names))  # the paper's order
        object.__setattr__(self, "model", check_model_name(self.model))
        if self.model == "corner_convnet":
            raise UsageError("model corner_convnet takes 1-channel 28x28 images; the corruptions need RGB: "
                             "expected shapes_cnn or a torchvision architecture such as resnet18")
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS), ("init", self.init, INITS),
                                     ("mode", self.mode, MODES), ("form", self.form, FORMS)):
            if value not in allowed:
                raise UsageError(f"{name} {value!r} is unknown; expected one of {', '.join(allowed)}")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name}={value!r}: expected a positive integer")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise UsageError(f"lr={self.lr!r}: expected a positive learning rate")
        for name in ("momentum", "weight_decay", "epsilon"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{name}={value!r}: expected a non-negative number")

    @property
    def rows(self) -> tuple[str, ...]:
        """The trained models, clean first: also the test conditions (columns)."""
        return (CLEAN, *self.corruptions)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd-step" else 3e-3)

    def milestones(self) -> tuple[int, ...]:
        """Epochs after which sgd-step divides the lr by 10: 50% and 75% of the run (20 and 30 of 40)."""
        return tuple(sorted({m for m in (self.epochs // 2, (self.epochs * 3) // 4) if 0 < m < self.epochs}))

    def training_key(self) -> dict:
        """The settings that change a model's weights (with the dataset and the model's corruption)."""
        return {"model": self.model, "epochs": self.epochs, "batch_size": self.batch_size,
                "optimizer": self.optimizer, "lr": self.learning_rate, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "init": self.init, "flip": self.flip, "mode": self.mode,
                "seed": self.seed}


@dataclass(frozen=True)
class OverlapResult:
    settings: OverlapSettings
    conditions: tuple[str, ...]          # ("none", *corruptions): the rows (training) and columns (test)
    accuracy: torch.Tensor               # float64 [M, M]: A[m, c], top-1 accuracy of model m under condition c
    correct: torch.Tensor                # int64 [M, M]
    total: int                           # test images per cell
    overlap_standard: torch.Tensor       # float64 [K, K] over the corruptions (spec §4, ratios to clean accuracy)
    overlap_bmvc2021: torch.Tensor       # the same on raw accuracies (get_overlapping_matrix.py at HEAD)
    undefined: dict[str, tuple[str, ...]]  # form -> corruptions whose own training did not help (their O is NaN)
    identity: dict                       # dataset and settings, for the summary
    trained: tuple[str, ...] = ()        # models trained by this run (the others were loaded from out_dir)
    evaluated: int = 0                   # cells computed by this run
    model_files: dict[str, str] = field(default_factory=dict)

    @property
    def corruptions(self) -> tuple[str, ...]:
        return self.conditions[1:]

    @property
    def overlap(self) -> torch.Tensor:
        return self.overlap_of(self.settings.form)

    def overlap_of(self, form: str) -> torch.Tensor:
        if form not in FORMS:
            raise UsageError(f"overlap form {form!r} is unknown; expected one of {', '.join(FORMS)}")
        return self.overlap_standard if form == "standard" else self.overlap_bmvc2021

    def clean_row(self) -> torch.Tensor:
        """The clean model's accuracy under every condition (clean first)."""
        return self.accuracy[0]

    def diagonal(self) -> torch.Tensor:
        """A[c, c] for every corruption c: the model trained on c, tested on c."""
        return torch.diagonal(self.accuracy)[1:]

    def gains(self) -> torch.Tensor:
        """A[c, c] - A[none, c]: what training on c adds on c."""
        return self.diagonal() - self.clean_row()[1:]


# ----------------------------------------------------------------------------------------------- the score

def robustness(accuracy: torch.Tensor, form: str = "standard") -> torch.Tensor:
    """R[m, c] = A[m, c] / A[m, none] (standard) or A[m, c] itself (bmvc2021); a model with no clean accuracy
    has NaN ratios."""
    if form not in FORMS:
        raise UsageError(f"overlap form {form!r} is unknown; expected one of {', '.join(FORMS)}")
    A = torch.as_tensor(accuracy, dtype=torch.float64)
    if form == "bmvc2021":
        return A.clone()
    clean = A[:, :1]
    return torch.where(clean > 0, A / clean.clamp_min(1e-300), torch.full_like(A, math.nan))


def overlap_matrix(accuracy: torch.Tensor, form: str = "standard",
                   epsilon: float = 1e-6) -> tuple[torch.Tensor, tuple[int, ...]]:
    """O over the corruptions from the accuracy matrix A [M, M] (row and column 0: clean).

    O(i, j) = max(0, ½·[(R_i(j) − R_none(j)) / (R_j(j) − R_none(j))
                        + (R_j(i) − R_none(i)) / (R_i(i) − R_none(i))])
    Symmetric, O(i, i) = 1, no upper clip. Where a gain R_j(j) − R_none(j) is at most `epsilon`, every O
    involving j is NaN. Returns (O [K, K], indices of those corruptions in 0..K-1).
    """
    A = torch.as_tensor(accuracy, dtype=torch.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or A.shape[0] < 2:
        raise UsageError(f"accuracy matrix of shape {tuple(A.shape)}: expected a square [M, M] matrix, M >= 2")
    R = robustness(A, form)
    base = R[0, 1:]                                    # R_none(c)
    gain = torch.diagonal(R)[1:] - base                # R_c(c) - R_none(c)
    transfer = R[1:, 1:] - base[None, :]               # [i, j]: R_i(j) - R_none(j)
    share = transfer / gain[None, :]                   # [i, j]: its share of training on j itself
    O = (0.5 * (share + share.T)).clamp_min(0.0)
    bad = ~(gain > epsilon)                            # also catches NaN
    O[bad, :] = math.nan
    O[:, bad] = math.nan
    return O, tuple(int(i) for i in torch.nonzero(bad).flatten())


# ----------------------------------------------------------------------------------------------- data

def shapes_overlap_data(train_per_class: int = 400, test_per_class: int = 100, image_size: int = 32,
                        seed: int = 0) -> tuple[ClassificationData, ClassificationData]:
    """The embedded `shapes` data (rtool.data.shapes) as classification data in [0, 1], without planted cues:
    the models must recognise the drawn shape itself."""
    from rtool.data.shapes import ShapesConfig, generate_shapes

    config = ShapesConfig(n_train_per_class=train_per_class, n_val_per_class=test_per_class,
                          image_size=image_size, planted=(), seed=seed)
    parts = []
    for split, name in (("train", "train"), ("val", "test")):
        data = generate_shapes(config, split)
        parts.append(ClassificationData(images=data.images.float() / 255, labels=data.labels,
                                        class_names=list(data.class_names), name="shapes", split=name,
                                        source=f"generated: {asdict(config)}"))
    return parts[0], parts[1]


def _rgb(data: ClassificationData, role: str) -> torch.Tensor:
    images = data.images
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)  # the corruptions act on RGB
    if images.shape[1] != 3:
        raise UsageError(f"{role} images have {images.shape[1]} channels; expected 3 (RGB) or 1 (gray)")
    if min(images.shape[-2:]) < MIN_SIDE:
        raise UsageError(f"{role} images of {images.shape[2]}x{images.shape[3]}: the corruptions need at least "
                         f"{MIN_SIDE}x{MIN_SIDE}")
    if len(data) < 2:
        raise UsageError(f"{role} set has {len(data)} images; expected at least 2")
    return images.contiguous()


# ----------------------------------------------------------------------------------------------- training

def _derived_seed(*parts) -> int:
    return int(stable_hash(list(parts), 15), 16)


def paper_init(model: nn.Module) -> nn.Module:
    """train.py's init: Xavier-uniform conv and linear weights, linear bias 0.01, BN weight ~N(1, 0.02), bias 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.constant_(module.bias, 0.01)
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)
    return model


def _build(settings: OverlapSettings, num_classes: int) -> nn.Module:
    seed_everything(settings.seed)  # every model starts from the same weights
    model = build_model(settings.model, None, num_classes).train()
    return paper_init(model) if settings.init == "paper" else model


def _corrupt_all(images: torch.Tensor, name: str, seed: int, mode: str) -> torch.Tensor:
    if name == CLEAN:
        return images
    parts = [corrupt(images[s:s + _CORRUPT_CHUNK], name, seed=seed,
                     indices=range(s, min(s + _CORRUPT_CHUNK, len(images))), mode=mode)
             for s in range(0, len(images), _CORRUPT_CHUNK)]
    return torch.cat(parts)


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    batches = list(torch.randperm(n, generator=gen).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < batch_size:
        batches.pop()  # drop_last, as train.py
    return batches


def train_protocol(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, corruption: str,
                   settings: OverlapSettings, *, device: torch.device, quiet: bool = True) -> nn.Module:
    """Train `model` with `corruption` as augmentation (spec §4.1); returns it in eval mode.

    Each epoch draws a fresh corrupted copy of the N images (parameters keyed on (seed, epoch, index)) and
    shuffles it with the clean copy: 2N samples, each image once corrupted and once clean. For the clean
    model (`corruption="none"`) both halves are clean.
    """
    n = images.shape[0]
    gen = generator(settings.seed)
    lr = settings.learning_rate
    steps = settings.epochs * len(_batches(2 * n, settings.batch_size, generator(0)))
    model = model.to(device).train()
    loss_fn = nn.CrossEntropyLoss()

    def make_optimizer(rate: float):
        if settings.optimizer == "sgd-step":
            return torch.optim.SGD(model.parameters(), lr=rate, momentum=settings.momentum,
                                   weight_decay=settings.weight_decay)
        return torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=settings.weight_decay)

    optimizer = make_optimizer(lr)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
                 if settings.optimizer == "adamw-onecycle" else None)
    labels = labels.long().to(device)
    images = images.to(device)
    bar = progress(total=steps, desc=f"train {corruption}", quiet=quiet, unit="step")
    try:
        for epoch in range(settings.epochs):
            if scheduler is None and epoch in settings.milestones():
                lr *= 0.1
                optimizer = make_optimizer(lr)  # train.py recreates it: the momentum buffers restart
            corrupted = _corrupt_all(images, corruption, _derived_seed(settings.seed, "train", epoch), settings.mode)
            flips = torch.rand(2 * n, generator=gen) < 0.5 if settings.flip else None
            total = 0.0
            for index in _batches(2 * n, settings.batch_size, gen):
                half = index >= n
                source = index - n * half
                x = torch.where(half.to(device)[:, None, None, None], images[source.to(device)],
                                corrupted[source.to(device)])
                if flips is not None:
                    flip = flips[index].to(device)
                    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
                loss = loss_fn(model(x), labels[source.to(device)])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total += float(loss.detach())
                bar.update(1)
            if not math.isfinite(total):
                raise UsageError(f"training with {corruption} diverged at epoch {epoch + 1}; lower the learning "
                                 f"rate ({settings.learning_rate})")
            bar.set_postfix(epoch=epoch + 1)
    finally:
        bar.close()
    return model.eval()


@torch.no_grad()
def _count_correct(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                   device: torch.device) -> int:
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device)
        correct += int((model(x).argmax(1).cpu() == labels[start:start + batch_size]).sum())
    return correct


# ----------------------------------------------------------------------------------------------- files

def _load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _load_weights(model: nn.Module, path: Path) -> bool:
    if not path.exists():
        return False
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return True
    except Exception as exc:  # a damaged file is retrained, not fatal
        warnings.warn(f"retraining {path}: it could not be loaded ({type(exc).__name__}: {exc})", stacklevel=3)
        return False


# ----------------------------------------------------------------------------------------------- the run

def run_overlap(train: ClassificationData, test: ClassificationData, settings: OverlapSettings = OverlapSettings(),
                *, out_dir: str | Path | None = None, device: str | torch.device = "cpu",
                quiet: bool = True) -> OverlapResult | None:
    """Train the models, fill the accuracy matrix, compute both overlap forms.

    out_dir: models go to `out_dir/models/<corruption>-<hash>.pt` and cells to
        `out_dir/cells/<corruption>-<hash>/<condition>-<hash>.json`, reused by a rerun (None: nothing saved).
    Returns the result on rank 0 and None on the other ranks under torchrun.
    """
    device = torch.device(device)
    if train.num_classes != test.num_classes:
        raise UsageError(f"train set has {train.num_classes} classes but test set {test.num_classes}; "
                         "expected the same")
    train_images, test_images = _rgb(train, "training"), _rgb(test, "test")
    if train_images.shape[-2:] != test_images.shape[-2:]:
        raise UsageError(f"training images are {tuple(train_images.shape[-2:])} but test images "
                         f"{tuple(test_images.shape[-2:])}; expected one size")
    rows = settings.rows
    data_key = {"train": train.fingerprint(), "test": test.fingerprint(), "num_classes": train.num_classes}
    identity = {"rtool_version": rtool.__version__, "dataset": train.name, "train_images": len(train),
                "test_images": len(test), "image_size": list(train_images.shape[-2:]),
                "data": data_key, "settings": {**settings.training_key(), "corruptions": list(settings.corruptions),
                                               "form": settings.form, "epsilon": settings.epsilon}}
    eval_seed = _derived_seed(settings.seed, "test")
    eval_key = stable_hash({"test": data_key["test"], "seed": eval_seed, "mode": settings.mode})
    out = Path(out_dir) if out_dir is not None else None

    ctx = current()
    first, last = shard_bounds(len(rows), ctx.rank, ctx.world_size)
    mine = rows[first:last]
    conditions: dict[str, torch.Tensor] = {}
    records: dict[str, dict] = {}
    trained: list[str] = []
    evaluated = 0
    bar = progress(total=len(mine), desc="models", quiet=quiet, unit="model")
    for name in mine:
        key = {"rtool_version": rtool.__version__, "analysis": "noc-overlap", "train_corruption": name,
               **data_key, **settings.training_key()}
        model_hash = stable_hash(key, 12)
        model_path = out / "models" / f"{name}-{model_hash}.pt" if out is not None else None
        cell_dir = out / "cells" / f"{name}-{model_hash}" if out is not None else None
        cells = {c: (_load_json(cell_dir / f"{c}-{eval_key}.json") if cell_dir is not None else None) for c in rows}
        cells = {c: v for c, v in cells.items() if v and v.get("total") == len(test) and "correct" in v}
        model = None
        if len(cells) < len(rows):
            model = _build(settings, train.num_classes)
            if model_path is None or not _load_weights(model, model_path):
                model = train_protocol(model, train_images, train.labels, name, settings, device=device, quiet=quiet)
                trained.append(name)
                if model_path is not None:
                    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
                    atomic_save_torch(model_path, state)
                    atomic_write_json(model_path.with_suffix(".json"), key)
            model = model.to(device).eval()
        for c in rows:
            if c in cells:
                continue
            if c not in conditions:
                conditions[c] = _corrupt_all(test_images, c, eval_seed, settings.mode)
            correct = _count_correct(model, conditions[c], test.labels, settings.eval_batch_size, device)
            cells[c] = {"correct": correct, "total": len(test), "accuracy": correct / len(test),
                        "model": name, "condition": c}
            evaluated += 1
            if cell_dir is not None:
                atomic_write_json(cell_dir / f"{c}-{eval_key}.json", cells[c])
        records[name] = {"correct": [int(cells[c]["correct"]) for c in rows],
                         "file": str(model_path) if model_path is not None else ""}
        bar.update(1)
    bar.close()

    gathered = gather_to_rank0({"records": records, "trained": trained, "evaluated": evaluated})
    if gathered is None:
        return None
    merged = {k: v for part in gathered for k, v in part["records"].items()}
    correct = torch.tensor([merged[name]["correct"] for name in rows], dtype=torch.int64)
    accuracy = correct.double() / len(test)
    overlaps, undefined = {}, {}
    for form in FORMS:
        overlaps[form], bad = overlap_matrix(accuracy, form, settings.epsilon)
        undefined[form] = tuple(settings.corruptions[i] for i in bad)
    return OverlapResult(settings=settings, conditions=rows, accuracy=accuracy, correct=correct, total=len(test),
                         overlap_standard=overlaps["standard"], overlap_bmvc2021=overlaps["bmvc2021"],
                         undefined=undefined, identity=identity,
                         trained=tuple(n for part in gathered for n in part["trained"]),
                         evaluated=sum(part["evaluated"] for part in gathered),
                         model_files={name: merged[name]["file"] for name in rows})
