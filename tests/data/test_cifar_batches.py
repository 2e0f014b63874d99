"""CIFAR-10 python batches: the shipped (Python 2) pickle format and Python 3 protocols load exactly; hostile or
corrupt pickles are refused with one line naming the file, before any foreign code runs."""
import os
import pickle

import numpy as np
import pytest
import torch

from fixtures.classification_layout import make_cifar
from rtool.data import CIFAR10_CLASSES, load_cifar10, load_classification, read_cifar_batch, safe_unpickle
from rtool.errors import UsageError


@pytest.mark.parametrize("style", ["py2", "2", "4", "5"])
def test_cifar_loads_exact_values(tmp_path, style):
    fx = make_cifar(tmp_path, style=style)
    for split, images, labels in (("train", fx.train_images, fx.train_labels), ("test", fx.test_images, fx.test_labels)):
        data = load_classification("cifar10", tmp_path, split)
        assert data.images.shape == (len(labels), 3, 32, 32) and data.images.dtype == torch.float32
        assert torch.equal(data.images, torch.from_numpy(images).float() / 255.0)
        assert torch.equal(data.labels, torch.from_numpy(labels))
        assert data.class_names == fx.class_names
    assert len(load_cifar10(tmp_path, "train")) == 5 * 3


def test_cifar_channel_layout_is_rgb_planes(tmp_path):
    fx = make_cifar(tmp_path, per_batch=1, nested=False, meta=False)
    row = fx.test_images.reshape(1, 3072)[0]
    data = load_cifar10(tmp_path, "test")
    assert data.class_names == CIFAR10_CLASSES
    # pixel (y=2, x=5) of the green plane is value 1024 + 2*32 + 5 of the row
    assert data.images[0, 1, 2, 5] == row[1024 + 2 * 32 + 5] / 255.0


def one_line_error(path, call):
    with pytest.raises(UsageError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    return message


class _Exploit:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    fx = make_cifar(tmp_path)
    marker = tmp_path / "pwned"
    bad = fx.folder / "data_batch_3"
    bad.write_bytes(pickle.dumps({"data": _Exploit(f"touch {marker}"), "labels": [0]}, protocol=2))
    message = one_line_error(bad, lambda: load_cifar10(tmp_path, "train"))
    assert "refusing to load global" in message and "system" in message
    assert not marker.exists()


@pytest.mark.parametrize("payload", [
    (eval, ("1+1",)), (getattr, (object, "__subclasses__")), (pickle.loads, (b"",)), (__import__, ("os",)),
])
def test_other_dangerous_globals_are_refused(tmp_path, payload):
    class Reducer:
        def __reduce__(self):
            return payload
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        safe_unpickle(pickle.dumps(Reducer(), protocol=2))


def test_codecs_encode_only_latin1(tmp_path):
    import codecs

    class Reducer:
        def __reduce__(self):
            return (codecs.encode, ("eJzLSM3JyQcABiwCFQ==", "base64"))
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        safe_unpickle(pickle.dumps(Reducer(), protocol=2))


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not_dict", "bad_shape", "count", "label_range", "no_data"])
def test_corrupt_batches_name_file(tmp_path, damage):
    fx = make_cifar(tmp_path)
    path = fx.folder / "test_batch"
    good = path.read_bytes()
    data = np.zeros((2, 3072), dtype=np.uint8)
    blobs = {
        "truncated": good[: len(good) // 2],
        "garbage": b"\x00\x01 this is not a pickle",
        "not_dict": pickle.dumps([1, 2, 3], protocol=2),
        "bad_shape": pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}, protocol=2),
        "count": pickle.dumps({"data": data, "labels": [0, 1, 2]}, protocol=2),
        "label_range": pickle.dumps({"data": data, "labels": [0, 10]}, protocol=2),
        "no_data": pickle.dumps({"labels": [0, 1]}, protocol=2),
    }
    path.write_bytes(blobs[damage])
    message = one_line_error(path, lambda: load_cifar10(tmp_path, "test"))
    assert "corrupt CIFAR batch" in message


def test_bytes_keys_accepted(tmp_path):
    data = np.arange(3072, dtype=np.uint8).reshape(1, 3072) % 7
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": [4]}, protocol=4))
    images, labels = read_cifar_batch(path)
    assert np.array_equal(images.reshape(1, 3072), data) and labels.tolist() == [4]


def test_missing_batches_and_folder(tmp_path):
    fx = make_cifar(tmp_path)
    (fx.folder / "data_batch_4").unlink()
    assert "data_batch_4" in one_line_error(fx.folder, lambda: load_cifar10(tmp_path, "train"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "cifar-10-python.tar.gz").write_bytes(b"")
    assert "extract" in one_line_error(empty, lambda: load_cifar10(empty))
