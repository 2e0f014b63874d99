"""`rtool corner` trains other architectures than the authors' ConvNet: zoo models by name, for 3-channel data
of any size (CIFAR-10, image folders)."""
from __future__ import annotations

import pytest
import torch

import rtool.corner
from rtool.corner import CornerSettings, DeepFoolConfig
from rtool.data import ClassificationData
from rtool.errors import UsageError
from rtool.models import build_corner_model, corner_model_key, corner_training
from fixtures.blobs import colour_blobs


def test_a_torchvision_model_is_built_for_the_data_and_seeded():
    data = colour_blobs(2, "train", 0)
    a, b = build_corner_model(data, 3, "resnet18"), build_corner_model(data, 3, "resnet18")
    assert a(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    other = build_corner_model(data, 4, "resnet18")
    assert not torch.equal(a.conv1.weight, other.conv1.weight)
    key = corner_model_key(data, 3, corner_training("colours"), "cpu", "resnet18")
    assert key["model"] == "resnet18" and corner_model_key(data, 3, corner_training("colours"))["model"] == \
        "corner_convnet"


def test_architectures_that_cannot_take_the_images_are_one_line():
    gray = ClassificationData(torch.zeros(4, 1, 28, 28), torch.zeros(4, dtype=torch.long), ["a"], "digits", "train")
    with pytest.raises(UsageError, match="resnet18 takes 3-channel images but digits images are 1x28x28"):
        build_corner_model(gray, 0, "resnet18")
    small = colour_blobs(2, "train", 0, size=28)
    with pytest.raises(UsageError, match="alexnet cannot take colours's 3x28x28 images"):
        build_corner_model(small, 0, "alexnet")
    with pytest.raises(UsageError, match="resnet9"):
        CornerSettings(architecture="resnet9")


@pytest.mark.slow
def test_the_experiment_runs_with_a_torchvision_model(tmp_path):
    train, test = colour_blobs(8, "train", 0), colour_blobs(3, "test", 1)
    settings = CornerSettings(models=1, corner_cases=2, epochs=1, knn=3, batch_size=16, architecture="resnet18",
                              deepfool=DeepFoolConfig(max_iter=3))
    result = rtool.corner.run(train, test, settings, out_dir=tmp_path)
    assert result.config["architecture"] == "resnet18"
    assert result.original[0].surprise.shape == (24,) and result.retrained[0].radii.shape == (9,)
    assert len(result.corner.indices) == 2
