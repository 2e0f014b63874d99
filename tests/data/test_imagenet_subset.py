"""ImageNet class folders as classification data (labels = ImageNet indices), and normalisation for named weights."""
from __future__ import annotations

import pytest
import torch

from rtool.corner.inputs import CornerData, inputs_for_model
from rtool.data import load_classification
from rtool.data.imagenet_classes import load_imagenet_classes
from rtool.errors import UsageError
from rtool.models import ModelRequest, input_normalization
from fixtures.imagenet_layout import CLASS_WNIDS as WNIDS
from fixtures.imagenet_layout import make_imagenet_classes as write_layout

def test_classes_by_wnid_or_index_are_labelled_by_imagenet_index(tmp_path):
    write_layout(tmp_path)
    train = load_classification("imagenet", tmp_path, "train", classes=("n01484850", "0"), image_size=32)
    assert train.images.shape == (6, 3, 32, 32) and train.images.min() >= 0 and train.images.max() <= 1
    assert train.labels.tolist() == [2, 2, 2, 0, 0, 0] and train.num_classes == 1000
    assert train.class_names[2] == load_imagenet_classes().labels[2]
    assert [key for key, _ in train.skipped] == [f"{WNIDS[0]}/broken.JPEG"]
    test = load_classification("imagenet", tmp_path, "test", image_size=32)
    assert test.labels.tolist() == [0, 0, 1, 1, 2, 2]  # every class folder of val/, in wnid order
    # the flat colour survives resize + centre crop
    assert torch.allclose(test.images[2, :, 16, 16], torch.tensor([80, 40, 200]) / 255.0, atol=0.03)


@pytest.mark.parametrize("classes, message", [
    (("n99999999",), "expected a wnid like n01440764"),
    (("5",), "no folder"),
    (("1000",), "expected an index in 0..999"),
])
def test_bad_classes_are_one_line(tmp_path, classes, message):
    write_layout(tmp_path, corrupt=False)
    with pytest.raises(UsageError, match=message):
        load_classification("imagenet", tmp_path, "train", classes=classes)


def test_missing_split_folder_is_named(tmp_path):
    (tmp_path / "train" / WNIDS[0]).mkdir(parents=True)
    with pytest.raises(UsageError, match=r"no folder .*val"):
        load_classification("imagenet", tmp_path, "test")


def test_named_weights_normalise_the_inputs(tmp_path):
    write_layout(tmp_path, corrupt=False)
    train = load_classification("imagenet", tmp_path, "train", image_size=16)
    data = CornerData(train, train, None)
    assert input_normalization("resnet18", "DEFAULT") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert input_normalization("resnet18", None) is None and input_normalization("shapes_cnn", "x.pt") is None
    assert input_normalization("resnet18", str(tmp_path / "model.pt")) is None
    same = inputs_for_model(data, ModelRequest("resnet18", None, None, None))
    assert same is data
    normalised = inputs_for_model(data, ModelRequest("resnet18", "IMAGENET1K_V1", None, None))
    expected = (train.images - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / \
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(normalised.train.images, expected) and torch.equal(normalised.test.labels, train.labels)
    with pytest.raises(UsageError, match="expected 3 means"):
        train.normalized((0.5,), (0.5,))
