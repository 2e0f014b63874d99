"""ClassificationData, the folder loader, the digits split and the load_classification entry point."""
import numpy as np
import pytest
import torch

from fixtures.classification_layout import make_class_folder
from rtool.data import (CLASSIFICATION_DATASETS, ClassificationData, load_classification, load_digits,
                        load_image_folder)
from rtool.data.digits import digits_split_indices, upsample_digits
from rtool.errors import UsageError


def _toy(n=6):
    images = torch.arange(n * 4, dtype=torch.float32).reshape(n, 1, 2, 2) / (n * 4)
    return ClassificationData(images=images, labels=torch.arange(n) % 3, class_names=["a", "b", "c"],
                              name="toy", split="train")


def test_subset_keeps_original_indices_and_fingerprint_changes():
    data = _toy()
    sub = data.subset([4, 1])
    assert torch.equal(sub.images, data.images[[4, 1]]) and sub.indices.tolist() == [4, 1]
    assert sub.subset([1]).indices.tolist() == [1]
    kept = data.without([0, 5])
    assert kept.indices.tolist() == [1, 2, 3, 4] and len(kept) == 4
    assert kept.fingerprint() != data.fingerprint() and data.fingerprint() == _toy().fingerprint()
    image, label = data.dataset()[2]
    assert torch.equal(image, data.images[2]) and label == 2
    with pytest.raises(UsageError, match="0..5"):
        data.subset([6])
    with pytest.raises(UsageError, match="0..5"):
        data.without([-1])
    with pytest.raises(UsageError, match="integer positions"):
        data.subset([True, False])
    assert len(data.subset([])) == 0 and len(data.without(torch.tensor([], dtype=torch.long))) == 6


def test_protocol_is_validated():
    with pytest.raises(UsageError, match="float32"):
        ClassificationData(torch.zeros(2, 2, 2), torch.zeros(2, dtype=torch.long), ["a"], "x", "train")
    with pytest.raises(UsageError, match="0..1"):
        ClassificationData(torch.zeros(2, 1, 2, 2), torch.tensor([0, 2]), ["a", "b"], "x", "train")


def test_folder_loads_resized_colours_and_skips_corrupt(tmp_path):
    fx = make_class_folder(tmp_path)
    data = load_classification("folder", tmp_path, "test", image_size=(6, 8))
    assert data.class_names == fx.class_names and data.labels.tolist() == fx.labels
    assert data.images.shape == (len(fx.labels), 3, 6, 8)
    expected = torch.tensor(fx.colours, dtype=torch.float32) / 255.0
    assert torch.equal(data.images.amin((2, 3)), expected) and torch.equal(data.images.amax((2, 3)), expected)
    assert [key for key, _ in data.skipped] == fx.corrupt and "cannot decode" in data.skipped[0][1]
    grey = load_image_folder(tmp_path, image_size=5, channels=1)
    assert grey.images.shape == (len(fx.labels), 1, 5, 5)


def test_folder_with_split_subfolders(tmp_path):
    make_class_folder(tmp_path, split="train", corrupt=False)
    fx = make_class_folder(tmp_path, split="val", corrupt=False)
    (tmp_path / "val" / "ant" / "img_0.png").unlink()
    test = load_image_folder(tmp_path, "test", image_size=4)
    assert len(test) == len(fx.labels) - 1 and test.source.endswith("val")
    assert len(load_image_folder(tmp_path, "train", image_size=4)) == len(fx.labels)


def test_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="no class subfolders"):
        load_image_folder(tmp_path)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.png").write_bytes(b"broken")
    with pytest.raises(UsageError, match=r"no readable images.*1 unreadable"):
        load_image_folder(tmp_path)
    with pytest.raises(UsageError, match="channels"):
        load_image_folder(tmp_path, channels=2)


def test_digits_split_is_deterministic_stratified_and_disjoint():
    labels = np.repeat(np.arange(10), 180)[:1797]
    train, test = digits_split_indices(labels)
    again_train, again_test = digits_split_indices(labels)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(test) == 360 and not set(train) & set(test) and len(set(train) | set(test)) == 1797
    other, _ = digits_split_indices(labels, split_seed=1)
    assert not np.array_equal(other, train)


def test_digits_data_and_split():
    train, test = load_digits("train"), load_digits("test")
    assert (len(train), len(test)) == (1437, 360)
    assert train.images.shape == (1437, 1, 28, 28) and train.images.dtype == torch.float32
    assert 0.0 == float(train.images.min()) and float(train.images.max()) == 1.0
    train_counts, test_counts = np.bincount(train.labels, minlength=10), np.bincount(test.labels, minlength=10)
    total = train_counts + test_counts
    assert np.all(np.abs(test_counts - total * 360 / 1797) <= 1)
    from sklearn.datasets import load_digits as sk_digits
    raw = sk_digits()
    _, test_positions = digits_split_indices(raw.target)
    assert torch.equal(test.labels, torch.from_numpy(raw.target[test_positions]))
    assert torch.allclose(test.images, upsample_digits(raw.images[test_positions]))
    # bilinear upsampling keeps the mean brightness close to the 8x8 original's
    assert abs(float(test.images.mean()) - raw.images[test_positions].mean() / 16) < 0.02
    assert torch.equal(load_digits("test").images, test.images)


def test_load_classification_errors(tmp_path):
    for call, pattern in [
        (lambda: load_classification("imagenet2"), "expected one of digits, mnist, cifar10, folder"),
        (lambda: load_classification("digits", split="val"), "expected one of train, test"),
        (lambda: load_classification("digits", image_size=3), "does not take option"),
        (lambda: load_classification("cifar10"), "needs --data-dir"),
        (lambda: load_classification("folder", tmp_path / "none"), "no such directory"),
    ]:
        with pytest.raises(UsageError, match=pattern) as info:
            call()
        assert "\n" not in str(info.value)
    assert set(CLASSIFICATION_DATASETS) == {"digits", "mnist", "cifar10", "folder", "imagenet"}
