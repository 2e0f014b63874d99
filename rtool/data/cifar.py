"""CIFAR-10 from its python batches in a user's folder (no download), unpickled with an allow-list.

Layout: `data_dir/cifar-10-batches-py/` (what the official `cifar-10-python.tar.gz` extracts to) or `data_dir`
itself, holding `data_batch_1` .. `data_batch_5` (train, read in that order) and `test_batch` (test), plus the
optional `batches.meta` (its `label_names` become the class names). Each batch is a pickled dict with `data`
(uint8 [N, 3072]: the 1024 red, then green, then blue values of a 32x32 image, row-major) and `labels`
(N ints in 0..9). Images become float32 value / 255 in [0, 1], shape [N, 3, 32, 32].

The batches are pickles, and a pickle can run any code while it loads, so they are read with
`SafeUnpickler`: only the numpy array/dtype reconstruction functions and a latin-1-only `_codecs.encode`
(what numpy arrays pickled with protocol 2 need) resolve; any other global is refused before it is called,
and the file is reported as a one-line `UsageError`, like any other corrupt or malformed batch.
"""
from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtool.data.classification import ClassificationData, check_split, to_unit_float
from rtool.errors import UsageError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_PIXELS = 3 * 32 * 32


def _numpy_function(module: str, name: str):
    import importlib
    for candidate in (module, module.replace("numpy._core", "numpy.core")):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {module}.{name}")


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1" or errors != "strict":
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not allowed")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_function("numpy._core.multiarray", "_reconstruct")
    scalar = _numpy_function("numpy._core.multiarray", "scalar")
    frombuffer = _numpy_function("numpy._core.numeric", "_frombuffer")
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): _latin1_encode}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only numpy array reconstruction globals (see module docstring)."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if SafeUnpickler._allowed is None:
            SafeUnpickler._allowed = _allowed_globals()
        try:
            return SafeUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def safe_unpickle(data: bytes) -> Any:
    """Unpickle `data` with `SafeUnpickler` (latin-1 for Python 2 strings, as the official batches need)."""
    return SafeUnpickler(io.BytesIO(data), encoding="latin1").load()


def _load_pickle(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return safe_unpickle(data)
    except Exception as err:  # any failure inside unpickling means a corrupt or hostile file
        raise UsageError(f"corrupt CIFAR batch {path}: {type(err).__name__}: {err}; expected a pickled dict of the "
                         f"CIFAR-10 python version") from None


def _field(batch: dict, key: str) -> Any:
    for candidate in (key, key.encode("latin1")):
        if candidate in batch:
            return batch[candidate]
    return None


def read_cifar_batch(path: str | Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 3, 32, 32] and int64 labels [N] of one batch file, validated."""
    path = Path(path)
    batch = _load_pickle(path)
    if not isinstance(batch, dict):
        raise UsageError(f"corrupt CIFAR batch {path}: holds a {type(batch).__name__}; expected a dict with data and labels")
    data, labels = _field(batch, "data"), _field(batch, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UsageError(f"corrupt CIFAR batch {path}: data is {got}; expected uint8 [N, {_PIXELS}]")
    try:
        label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise UsageError(f"corrupt CIFAR batch {path}: labels are {type(labels).__name__}; expected a list of ints") from None
    if labels is None or label_array.shape[0] != data.shape[0]:
        raise UsageError(f"corrupt CIFAR batch {path}: {label_array.shape[0] if labels is not None else 0} labels for "
                         f"{data.shape[0]} images; expected the same count")
    if label_array.size and (label_array.min() < 0 or label_array.max() >= num_classes):
        raise UsageError(f"corrupt CIFAR batch {path}: labels {label_array.min()}..{label_array.max()}; expected "
                         f"0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), label_array


def cifar10_folder(data_dir: str | Path) -> Path:
    """The folder holding the batches: `data_dir/cifar-10-batches-py` or `data_dir` itself."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise UsageError(f"cifar10 data dir {root}: no such directory; expected a folder with {CIFAR10_FOLDER}/")
    nested = root / CIFAR10_FOLDER
    if nested.is_dir():
        return nested
    if any((root / name).is_file() for names in CIFAR10_BATCHES.values() for name in names):
        return root
    hint = "; extract cifar-10-python.tar.gz there first" if (root / "cifar-10-python.tar.gz").is_file() else ""
    raise UsageError(f"cifar10 data dir {root}: no {CIFAR10_FOLDER}/ and no data_batch_1..5/test_batch files{hint}")


def _class_names(folder: Path) -> list[str]:
    meta_path = folder / "batches.meta"
    if not meta_path.is_file():
        return list(CIFAR10_CLASSES)
    meta = _load_pickle(meta_path)
    names = _field(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, (str, bytes)) for n in names):
        raise UsageError(f"corrupt CIFAR meta file {meta_path}: expected a dict with 10 label_names")
    return [n.decode("latin1") if isinstance(n, bytes) else n for n in names]


def load_cifar10(data_dir: str | Path, split: str = "train") -> ClassificationData:
    """One CIFAR-10 split from the python batches under `data_dir` (module docstring), in batch order."""
    check_split(split, "cifar10")
    folder = cifar10_folder(data_dir)
    paths = [folder / name for name in CIFAR10_BATCHES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"cifar10 {split} split: {', '.join(missing)} not found in {folder}")
    class_names = _class_names(folder)
    parts = [read_cifar_batch(path) for path in paths]
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return ClassificationData(images=to_unit_float(images), labels=torch.from_numpy(labels), class_names=class_names,
                              name="cifar10", split=split, source=str(folder))
