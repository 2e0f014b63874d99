"""rtool.models: the zoo (offline weights), layer lookup, the small nets, training and the model cache."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rtool.errors import UsageError, WeightsUnavailable
from rtool.models import (
    MODEL_NAMES,
    CornerConvNet,
    ShapesCNN,
    build_model,
    cached_model,
    default_target_layer,
    eval_transform_spec,
    get_layer,
    hub_checkpoint_path,
    layer_names,
    num_classes_of,
    train_classifier,
    weights_enum,
)
from rtool.models.zoo import _construct


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """Point torch.hub at an empty directory and make any download attempt fail loudly."""
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def no_download(*args, **kwargs):
        raise AssertionError("rtool must never download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    return tmp_path / "torch-home" / "hub" / "checkpoints"


# ------------------------------------------------------------------------------------------- zoo

@pytest.mark.parametrize("name", ["resnet18", "alexnet", "mobilenet_v3_large", "shapes_cnn"])
def test_build_random_init_models(name):
    model = build_model(name)
    assert not model.training
    size = 64 if name == "shapes_cnn" else 96
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, num_classes_of(model))


def test_build_with_num_classes_and_resnet152_target():
    assert num_classes_of(build_model("resnet18", num_classes=7)) == 7
    big = build_model("resnet152")
    assert get_layer(big, default_target_layer("resnet152")).out_channels == 2048


def test_every_zoo_model_has_a_spatial_default_target():
    for name in MODEL_NAMES:
        on_meta = name != "regnet_y_400mf"  # its forward reads a tensor value, which meta tensors cannot give
        with torch.device("meta" if on_meta else "cpu"):
            model = _construct(name, None, random_init=False).eval()
        layer = get_layer(model, default_target_layer(name))
        seen = []
        layer.register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
        channels = 1 if name == "corner_convnet" else 3
        size = {"corner_convnet": 28, "shapes_cnn": 64, "inception_v3": 299}.get(name, 224)
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device="meta" if on_meta else "cpu"))
        assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][-1] >= 2, (name, seen)


def test_unknown_model_lists_close_names():
    with pytest.raises(UsageError, match=r"unknown model 'resnet-15'.*resnet152") as info:
        build_model("resnet-15")
    assert "\n" not in str(info.value)


def test_named_weights_missing_say_which_file_and_where(empty_hub):
    with pytest.raises(WeightsUnavailable) as info:
        build_model("resnet18", "DEFAULT")
    message = str(info.value)
    expected = empty_hub / "resnet18-f37072fd.pth"
    assert hub_checkpoint_path(weights_enum("resnet18").DEFAULT) == expected
    assert str(expected) in message and "--weights PATH" in message and "\n" not in message
    assert isinstance(info.value, UsageError)


def test_named_weights_load_from_hub_cache(empty_hub):
    reference = build_model("resnet18")
    empty_hub.mkdir(parents=True)
    torch.save(reference.state_dict(), empty_hub / "resnet18-f37072fd.pth")
    for spelling in ("IMAGENET1K_V1", "DEFAULT", "ResNet18_Weights.IMAGENET1K_V1"):
        loaded = build_model("resnet18", spelling)
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert torch.equal(loaded(x), reference(x))
    with pytest.raises(UsageError, match="have 1000 classes, got num_classes=5"):
        build_model("resnet18", "DEFAULT", num_classes=5)


def test_unknown_weights_name_and_missing_path():
    with pytest.raises(UsageError, match="unknown weights 'IMAGENET9' for resnet18; expected one of IMAGENET1K_V1"):
        build_model("resnet18", "IMAGENET9")
    with pytest.raises(UsageError, match="checkpoint file not found: .*nope.pt"):
        build_model("resnet18", "/no/such/dir/nope.pt")
    with pytest.raises(UsageError, match="shapes_cnn has no published weights"):
        build_model("shapes_cnn", "DEFAULT")


def test_load_state_dict_path_infers_classes_and_unwraps(tmp_path):
    source = build_model("resnet18", num_classes=7)
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    x = torch.randn(2, 3, 64, 64)
    for file in ("plain.pt", "wrapped.pth"):
        loaded = build_model("resnet18", tmp_path / file)
        assert num_classes_of(loaded) == 7 and not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), source(x))


def test_load_path_without_aux_heads(tmp_path):
    source = build_model("googlenet", num_classes=4)  # rtool's zoo drops the auxiliary heads
    assert not any(k.startswith("aux") for k in source.state_dict())
    torch.save(source.state_dict(), tmp_path / "g.pt")
    loaded = build_model("googlenet", str(tmp_path / "g.pt"))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))


def test_bad_checkpoints_are_usage_errors(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint at all" * 10)
    with pytest.raises(UsageError, match=r"garbage.pt is not a readable PyTorch file"):
        build_model("resnet18", tmp_path / "garbage.pt")

    torch.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "whole_model.pt")  # a pickled module, not a state_dict
    with pytest.raises(UsageError, match="cannot be loaded safely with weights_only=True .*Sequential"):
        build_model("resnet18", tmp_path / "whole_model.pt")

    torch.save({"a": 1, "b": "text"}, tmp_path / "no_state.pt")
    with pytest.raises(UsageError, match="holds no state_dict"):
        build_model("resnet18", tmp_path / "no_state.pt")

    torch.save(ShapesCNN().state_dict(), tmp_path / "other_arch.pt")
    with pytest.raises(UsageError, match=r"does not fit model resnet18: \d+ missing keys") as info:
        build_model("resnet18", tmp_path / "other_arch.pt")
    assert "\n" not in str(info.value)


def test_eval_transform_specs():
    spec = eval_transform_spec("resnet18", "IMAGENET1K_V1")
    assert (spec.resize, spec.crop, spec.interpolation) == (256, 224, "bilinear")
    assert spec.mean == pytest.approx((0.485, 0.456, 0.406)) and spec.std == pytest.approx((0.229, 0.224, 0.225))
    assert (eval_transform_spec("resnet50", "DEFAULT").resize, eval_transform_spec("resnet50").resize) == (232, 256)
    assert (eval_transform_spec("inception_v3").resize, eval_transform_spec("inception_v3").crop) == (342, 299)
    assert eval_transform_spec("efficientnet_b3").interpolation == "bicubic"
    image = torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)
    out = spec.transform()(image)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32


# ------------------------------------------------------------------------------------------- layers

def test_get_layer_found_and_not_found():
    model = build_model("resnet18")
    assert get_layer(model, "layer4.1.conv2") is model.layer4[1].conv2
    assert get_layer(model, "layer4[1].conv2") is model.layer4[1].conv2
    assert get_layer(model, default_target_layer("resnet18")) is model.layer4[1].conv2
    assert "layer4.1.conv2" in layer_names(model)
    with pytest.raises(UsageError, match=r"layer 'layer4.2.conv3' not found in ResNet; nearest names: .*layer4\.1\.conv2"):
        get_layer(model, "layer4.2.conv3")


def test_default_targets_of_named_families():
    assert default_target_layer("resnet152") == "layer4.2.conv3"
    assert default_target_layer("alexnet") == "avgpool"
    assert default_target_layer("vgg16") == "features.28"
    assert default_target_layer("efficientnet_b0") == "features.8.0"
    with pytest.raises(UsageError, match="unknown model"):
        default_target_layer("lenet")


# ------------------------------------------------------------------------------------------- small nets

def test_small_net_parameter_counts_and_shapes():
    corner = CornerConvNet()
    assert sum(p.numel() for p in corner.parameters()) == 3_186_098
    assert [sum(p.numel() for p in m.parameters()) for m in (corner.conv1, corner.conv2, corner.fc1, corner.fc2)] == \
        [624, 38_464, 3_137_000, 10_010]
    shapes = ShapesCNN()
    assert sum(p.numel() for p in shapes.parameters()) == 98_970
    with torch.no_grad():
        maps = get_layer(shapes.eval(), default_target_layer("shapes_cnn"))(
            shapes.block3(shapes.block2(shapes.block1(torch.randn(2, 3, 64, 64)))))
        assert maps.shape == (2, 128, 8, 8)
        assert corner.eval()(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert isinstance(build_model("corner_convnet"), CornerConvNet)


# ------------------------------------------------------------------------------------------- training

def _toy_set(n: int, seed: int):
    """Two classes told apart by which half of a noisy 16x16 image is bright."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    images = torch.randn(n, 1, 16, 16, generator=gen) * 0.5
    images[labels == 0, :, :, :8] += 1.0
    images[labels == 1, :, :, 8:] += 1.0
    return images, labels


def _train_toy(seed: int = 0):
    torch.manual_seed(0)
    model = ShapesCNN(num_classes=2, in_channels=1)
    images, labels = _toy_set(256, seed=1)
    return train_classifier(model, images, labels, epochs=4, lr=1e-2, batch_size=32, weight_decay=1e-4,
                            seed=seed, device="cpu", progress=False)


def test_train_classifier_learns_and_is_deterministic():
    model = _train_toy()
    assert not model.training
    images, labels = _toy_set(200, seed=2)
    with torch.no_grad():
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.95
    again = _train_toy()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_train_classifier_rejects_bad_shapes():
    with pytest.raises(UsageError, match="labels must have shape"):
        train_classifier(ShapesCNN(), torch.randn(4, 3, 8, 8), torch.zeros(3, dtype=torch.long), epochs=1, lr=1e-3,
                         batch_size=2, progress=False)


def test_cached_model_hit_and_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("RTOOL_CACHE", str(tmp_path))
    trained = []

    def build():
        torch.manual_seed(0)
        return ShapesCNN(num_classes=3)

    def train(model):
        trained.append(1)
        with torch.no_grad():
            model.fc.bias.fill_(float(len(trained)))  # a visible mark of which training produced it
        return model

    key = {"model": "shapes_cnn", "seed": 0, "epochs": 2, "dataset": {"name": "shapes", "n": 10}}
    first = cached_model(key, build, train)
    assert len(trained) == 1 and not first.training
    files = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert len(files) == 2 and files[0].startswith("shapes_cnn-") and files[0].endswith(".json")
    assert json.loads((tmp_path / "models" / files[0]).read_text())["seed"] == 0

    second = cached_model(dict(reversed(list(key.items()))), build, train)  # same key, other order
    assert len(trained) == 1
    assert torch.equal(second.fc.bias, first.fc.bias) and not second.training

    cached_model({**key, "epochs": 3}, build, train)
    assert len(trained) == 2

    # A damaged cache file is retrained rather than trusted.
    (tmp_path / "models" / files[1]).write_bytes(b"broken")
    with pytest.warns(UserWarning, match="retraining"):
        cached_model(key, build, train)
    assert len(trained) == 3
