"""MNIST IDX loading: both layouts, raw and gzip, exact values; every malformed file is one line naming it."""
import gzip
import struct

import numpy as np
import pytest
import torch

from fixtures.classification_layout import make_mnist, write_idx
from rtool.data import idx_bytes, load_classification, load_mnist, mnist_files, read_idx
from rtool.errors import UsageError


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_exact_values(tmp_path, layout, gz):
    fx = make_mnist(tmp_path, layout=layout, gz=gz)
    for split, images, labels in (("train", fx.train_images, fx.train_labels), ("test", fx.test_images, fx.test_labels)):
        data = load_classification("mnist", tmp_path, split)
        assert data.name == "mnist" and data.split == split and data.class_names == [str(d) for d in range(10)]
        assert data.images.dtype == torch.float32 and data.images.shape == (len(labels), 1, 28, 28)
        assert torch.equal(data.images[:, 0], torch.from_numpy(images).float() / 255.0)
        assert torch.equal(data.labels, torch.from_numpy(labels))
        assert torch.equal(data.indices, torch.arange(len(labels)))


def test_mnist_dotted_names_and_raw_subfolder(tmp_path):
    fx = make_mnist(tmp_path / "x", n_train=3)
    (tmp_path / "raw").mkdir()
    (fx.paths["train-images"]).rename(tmp_path / "raw" / "train-images.idx3-ubyte")
    (fx.paths["train-labels"]).rename(tmp_path / "raw" / "train-labels.idx1-ubyte")
    data = load_mnist(tmp_path, "train")
    assert torch.equal(data.labels, torch.from_numpy(fx.train_labels))


def test_raw_file_preferred_over_gz(tmp_path):
    make_mnist(tmp_path, gz=True, seed=1)
    fx = make_mnist(tmp_path, gz=False, seed=2)
    images, _ = mnist_files(tmp_path, "train")
    assert images.name == "train-images-idx3-ubyte"
    assert torch.equal(load_mnist(tmp_path).labels, torch.from_numpy(fx.train_labels))


def test_idx_roundtrip_all_types(tmp_path):
    for array in (np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.array([-3, 5], dtype=np.int16),
                  np.linspace(0, 1, 6, dtype=np.float32).reshape(3, 2), np.array([1.5, -2.0]),
                  np.array([7, -8], dtype=np.int32), np.array([-1, 2], dtype=np.int8)):
        path = tmp_path / "a.idx"
        path.write_bytes(idx_bytes(array))
        back = read_idx(path)
        assert back.dtype == array.dtype.newbyteorder("=") and np.array_equal(back, array)


def one_line_error(match_path, call):
    with pytest.raises(UsageError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and str(match_path) in message, message
    return message


def test_missing_files_and_dir(tmp_path):
    message = one_line_error(tmp_path, lambda: load_mnist(tmp_path, "test"))
    assert "t10k-images-idx3-ubyte[.gz]" in message and "MNIST/raw" in message
    one_line_error(tmp_path / "nope", lambda: load_classification("mnist", tmp_path / "nope"))
    with pytest.raises(UsageError, match="needs --data-dir"):
        load_classification("mnist")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_names_file(tmp_path, gz):
    fx = make_mnist(tmp_path, gz=gz)
    path = fx.paths["train-images"]
    blob = path.read_bytes()
    if gz:
        path.write_bytes(gzip.compress(gzip.decompress(blob)[:-5], mtime=0))
    else:
        path.write_bytes(blob[:-5])
    message = one_line_error(path, lambda: load_mnist(tmp_path))
    assert "truncated" in message and "expected" in message


def test_truncated_gzip_stream_names_file(tmp_path):
    fx = make_mnist(tmp_path, gz=True)
    path = fx.paths["train-labels"]
    path.write_bytes(path.read_bytes()[:-6])
    assert "gzip" in one_line_error(path, lambda: load_mnist(tmp_path))


def test_truncated_header_names_file(tmp_path):
    fx = make_mnist(tmp_path)
    path = fx.paths["train-images"]
    path.write_bytes(path.read_bytes()[:10])
    assert "header" in one_line_error(path, lambda: load_mnist(tmp_path))


def test_wrong_magic_names_file(tmp_path):
    fx = make_mnist(tmp_path)
    # labels where images are expected: a valid IDX file, but 1 dimension instead of 3
    fx.paths["train-images"].write_bytes(fx.paths["train-labels"].read_bytes())
    message = one_line_error(fx.paths["train-images"], lambda: load_mnist(tmp_path))
    assert "0x00000801" in message and "expected 0x00000803" in message
    # not an IDX file at all
    make_mnist(tmp_path / "ok")
    (tmp_path / "ok" / "train-labels-idx1-ubyte").write_bytes(b"PK\x03\x04 a zip, not idx")
    message = one_line_error(tmp_path / "ok" / "train-labels-idx1-ubyte", lambda: load_mnist(tmp_path / "ok"))
    assert "not an IDX file" in message


def test_wrong_type_code_names_file(tmp_path):
    fx = make_mnist(tmp_path)
    write_idx(fx.paths["train-labels"], fx.train_labels, type_code=0x0C)  # claims int32 but holds bytes
    message = one_line_error(fx.paths["train-labels"], lambda: load_mnist(tmp_path))
    assert "0x00000C01" in message


def test_trailing_bytes_names_file(tmp_path):
    fx = make_mnist(tmp_path)
    path = fx.paths["test-labels"]
    path.write_bytes(path.read_bytes() + b"\x00\x00")
    assert "after the data" in one_line_error(path, lambda: load_mnist(tmp_path, "test"))


def test_count_mismatch_names_file(tmp_path):
    fx = make_mnist(tmp_path, n_train=6)
    write_idx(fx.paths["train-labels"], fx.train_labels[:4])
    message = one_line_error(fx.paths["train-labels"], lambda: load_mnist(tmp_path))
    assert "4 labels" in message and "6 images" in message


def test_label_out_of_range_names_file(tmp_path):
    fx = make_mnist(tmp_path, n_train=6)
    labels = fx.train_labels.copy()
    labels[3] = 10
    write_idx(fx.paths["train-labels"], labels)
    message = one_line_error(fx.paths["train-labels"], lambda: load_mnist(tmp_path))
    assert "label 10 at item 3" in message and "0..9" in message


def test_named_gz_but_not_gzip(tmp_path):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(struct.pack(">HBBI", 0, 8, 1, 1) + b"\x01")
    assert "not gzip" in one_line_error(path, lambda: read_idx(path))
