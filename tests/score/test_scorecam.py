"""Score-CAM: the fast batched path vs the authors' plain loop, corrected masks, skipping, packing, planted truth."""
import warnings
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rtool.errors import UsageError
from rtool.score.saliency import SALIENCY_METHODS, SaliencyResult, saliency_maps, score_cam, score_cam_reference
from rtool.score.saliency.scorecam import upsampled_min

PLANTED_ZERO = (1, 4, 5, 11)  # channels of the hooked conv forced all-negative by a large negative bias


def small_cnn(seed: int = 0, classes: int = 5, zero_bias: float = -100.0, other_bias: float | None = None) -> nn.Sequential:
    """3 -> 8 -> 16 channels; the 16-channel conv (index 2) is the layer to explain."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes),
    )
    with torch.no_grad():
        if other_bias is not None:
            model[2].bias.fill_(other_bias)
        model[2].bias[list(PLANTED_ZERO)] = zero_bias
    return model.eval()


def images_and_targets(count=4, size=(37, 41), classes=5, seed=3):
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 3, *size, generator=gen)
    # different brightness per image, so each image has its own set of all-zero channels
    images = images * torch.linspace(0.3, 2.0, count)[:, None, None, None]
    targets = torch.randint(0, classes, (count,), generator=gen)
    return images, targets


def plain_scorecam(model, layer, image, target, mode="minmax", weight="softmax", eps=1e-8):
    """Score-CAM written from the formula, one channel at a time (test oracle for minmax and sigmoid)."""
    store = {}
    handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.detach().clone()))
    try:
        with torch.no_grad():
            model(image)
            acts = store["a"][0]
            if mode == "parity":
                acts = acts.relu()
            total = torch.zeros(image.shape[-2:])
            for k in range(acts.shape[0]):
                up = F.interpolate(acts[k][None, None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
                lo, hi = up.min(), up.max()
                if mode == "parity":
                    mask = up / (hi - lo if hi > lo else 1.0)
                else:
                    mask = (up - lo) / (hi - lo + eps)
                logits = model(image * mask)
                probs = logits.softmax(1) if weight == "softmax" else logits.sigmoid()
                total += probs[0, target] * mask
            total = total.relu()
            return (total - total.min()) / (total.max() - total.min())
    finally:
        handle.remove()


def test_parity_matches_authors_loop_with_packing_across_images():
    model = small_cnn(other_bias=-0.2)
    images, targets = images_and_targets()
    store = {}
    handle = model[2].register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    with torch.no_grad():
        model(images)
    handle.remove()
    alive = (store["a"] > 0).flatten(2).any(2)  # [B, C]
    # precondition: the images differ in which channels are all-zero, beyond the planted ones
    assert len({tuple(row.tolist()) for row in alive}) > 1
    assert not alive[:, list(PLANTED_ZERO)].any()

    result = score_cam(model, model[2], images, targets, batch_size=5, mode="parity")  # 5 < C = 16, divides neither C nor rows
    assert result.maps.shape == (4, 37, 41) and result.maps.dtype == torch.float32
    assert result.channels_total == 4 * 16
    assert result.channels_evaluated == int(alive.sum())
    assert result.forward_batches == -(-int(alive.sum()) // 5)
    for i in range(len(images)):
        expected = score_cam_reference(model, model[2], images[i:i + 1], int(targets[i]))
        assert (result.maps[i] - expected).abs().max() <= 1e-5
        # the test's own transcription agrees with the module's reference loop as well
        plain = plain_scorecam(model, model[2], images[i:i + 1], int(targets[i]), mode="parity")
        assert (plain - expected).abs().max() <= 1e-5


def test_parity_several_targets_for_one_image_and_batch_size_invariance():
    model = small_cnn(seed=1)
    image = images_and_targets(count=1, size=(32, 32))[0]
    images = image.expand(5, -1, -1, -1).contiguous()
    targets = torch.arange(5)
    packed = score_cam(model, model[2], images, targets, batch_size=7, mode="parity").maps
    one_batch = score_cam(model, model[2], images, targets, batch_size=1000, mode="parity").maps
    assert (packed - one_batch).abs().max() <= 1e-6
    for t in range(5):
        expected = score_cam_reference(model, model[2], image, t, n_batch=3)
        assert (packed[t] - expected).abs().max() <= 1e-5
    assert not torch.allclose(packed[0], packed[1])  # the targets really change the map


# The conv (no constant maps) and its ReLU (constant zero maps). At the conv a milder bias keeps the maps
# well-conditioned: minmax masks (U - min) / range carry round-off of order ulp(|A|) / range, so maps near -100
# with a range of ~1 would differ from the plain formula by ~1e-5 whichever way they are computed.
@pytest.mark.parametrize("layer_index,zero_bias", [(2, -3.0), (3, -100.0)])
def test_minmax_matches_plain_corrected_scorecam(layer_index, zero_bias):
    model = small_cnn(seed=2, zero_bias=zero_bias)
    images, targets = images_and_targets(count=3, size=(29, 35))
    result = score_cam(model, model[layer_index], images, targets, mode="minmax", batch_size=6)
    for i in range(len(images)):
        expected = plain_scorecam(model, model[layer_index], images[i:i + 1], int(targets[i]), mode="minmax")
        assert (result.maps[i] - expected).abs().max() <= 1e-5
    skipped = 1 - result.channels_evaluated / result.channels_total
    assert skipped == (0.0 if layer_index == 2 else pytest.approx(len(PLANTED_ZERO) / 16))


def test_sigmoid_weights_match_plain_version():
    model = small_cnn(seed=4, zero_bias=-3.0)
    images, targets = images_and_targets(count=2, size=(24, 24))
    for mode in ("parity", "minmax"):
        result = score_cam(model, model[2], images, targets, mode=mode, weight="sigmoid", batch_size=9)
        for i in range(2):
            expected = plain_scorecam(model, model[2], images[i:i + 1], int(targets[i]), mode=mode, weight="sigmoid")
            assert (result.maps[i] - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("mode,layer_index", [("parity", 2), ("minmax", 3)])
def test_skipping_zero_channels_changes_nothing_and_skips_what_was_planted(mode, layer_index):
    model = small_cnn(seed=5, other_bias=0.5)
    images, targets = images_and_targets(count=3, size=(32, 32))
    skipped = score_cam(model, model[layer_index], images, targets, mode=mode, batch_size=8)
    full = score_cam(model, model[layer_index], images, targets, mode=mode, batch_size=8, skip_zero_channels=False)
    assert skipped.skip_fraction == pytest.approx(len(PLANTED_ZERO) / 16)
    assert skipped.masked_forwards == 3 * (16 - len(PLANTED_ZERO))
    assert full.skip_fraction == 0.0 and full.masked_forwards == 3 * 16
    assert (skipped.maps - full.maps).abs().max() <= 1e-6


def test_channels_last_on_and_off_agree_and_model_is_restored():
    model = small_cnn(seed=6)
    weights_before = {name: (p, p.data_ptr(), p.stride()) for name, p in model.named_parameters()}
    images, targets = images_and_targets(count=2, size=(31, 33))
    on = score_cam(model, model[2], images, targets, channels_last=True, mode="parity").maps
    off = score_cam(model, model[2], images, targets, channels_last=False, mode="parity").maps
    assert (on - off).abs().max() <= 1e-5
    for name, p in model.named_parameters():
        param, pointer, stride = weights_before[name]
        assert p is param and p.data_ptr() == pointer and p.stride() == stride
    assert not model.training
    assert not model[2]._forward_hooks


def test_works_inside_a_callers_inference_mode():
    model = small_cnn(seed=15)
    images, targets = images_and_targets(count=2, size=(16, 16))
    outside = score_cam(model, model[2], images, targets, mode="parity").maps
    with torch.inference_mode():
        inside = score_cam(model, model[2], images, targets, mode="parity").maps
    assert torch.equal(torch.nan_to_num(outside, nan=-1.0), torch.nan_to_num(inside, nan=-1.0))
    assert model[2].weight.is_contiguous() and not model[2].weight.is_inference()


def test_constant_combined_map_is_nan_in_both_paths():
    model = small_cnn(seed=7, other_bias=-100.0)  # every channel of the hooked conv is all-negative
    images, targets = images_and_targets(count=2, size=(20, 20))
    result = score_cam(model, model[2], images, targets, mode="parity")
    assert result.channels_evaluated == 0 and result.forward_batches == 0
    assert torch.isnan(result.maps).all()  # kept as NaN: the robustness score counts it as RS = 0
    assert torch.isnan(score_cam_reference(model, model[2], images[:1], int(targets[0]))).all()
    assert torch.isnan(score_cam(model, model[3], images, targets, mode="minmax").maps).all()


def test_approximate_options_only_when_asked():
    model = small_cnn(seed=8, other_bias=0.5)
    images, targets = images_and_targets(count=2, size=(32, 32))
    exact = score_cam(model, model[2], images, targets, mode="parity")
    top = score_cam(model, model[2], images, targets, top_k=4, mode="parity")
    assert top.channels_evaluated == 2 * 4
    bf16 = score_cam(model, model[2], images, targets, autocast="bf16", mode="parity")
    assert bf16.channels_evaluated == exact.channels_evaluated
    assert (bf16.maps - exact.maps).abs().max() < 0.1


def test_progress_reports_every_masked_row():
    model = small_cnn(seed=9)
    images, targets = images_and_targets(count=2, size=(16, 16))
    steps = []
    result = score_cam(model, model[2], images, targets, batch_size=5, progress=steps.append, mode="parity")
    assert sum(steps) == result.channels_evaluated and len(steps) == result.forward_batches


def test_upsampled_min_equals_full_resize():
    gen = torch.Generator().manual_seed(0)
    for h, w, out in [(7, 7, (224, 224)), (3, 5, (37, 41)), (1, 1, (8, 8)), (16, 9, (8, 30)), (5, 5, (5, 5))]:
        maps = torch.randn(2, 6, h, w, generator=gen)
        full = F.interpolate(maps, size=out, mode="bilinear", align_corners=False).amin(dim=(-2, -1))
        torch.testing.assert_close(upsampled_min(maps, out), full, atol=1e-6, rtol=0)


def planted_model() -> nn.Sequential:
    """Class 1 fires on a bright red object (input channel 0 above 1); channels 1-7 see only the green channel."""
    torch.manual_seed(10)
    features = nn.Conv2d(3, 8, 1)
    head = nn.Linear(8, 3)
    with torch.no_grad():
        features.weight.zero_()
        features.bias.zero_()
        features.weight[0, 0] = 1.0
        features.bias[0] = -1.0
        features.weight[1:, 1, 0, 0] = torch.rand(7) + 0.5
        head.weight.zero_()
        head.bias.copy_(torch.tensor([8.0, 0.0, 0.0]))  # without the object, class 0 wins
        head.weight[1, 0] = 400.0
    return nn.Sequential(features, nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


def planted_image():
    """Green texture on the left half (context), a red object in the right half; returns image and box."""
    gen = torch.Generator().manual_seed(11)
    image = torch.zeros(1, 3, 32, 32)
    image[0, 1, :, :16] = torch.rand(32, 16, generator=gen)
    box = (slice(6, 14), slice(18, 28))
    image[0, 0, box[0], box[1]] = 2.0
    return image, box


def test_planted_object_gets_the_saliency_mass():
    model = planted_model()
    image, box = planted_image()
    assert model(image).argmax() == 1
    for parity in (True, False):
        maps = saliency_maps(model, model[2], image, torch.tensor([1]), method="scorecam", parity=parity).maps
        inside = maps[0, box[0], box[1]].sum() / maps[0].sum()
        assert inside > 0.8, (parity, float(inside))  # the box is 8 % of the image
        peak = divmod(int(maps[0].argmax()), 32)
        assert box[0].start <= peak[0] < box[0].stop and box[1].start <= peak[1] < box[1].stop
    # class 0 is what the model answers when the object is gone: its evidence is the context
    context = score_cam(model, model[2], image, torch.tensor([0]), mode="parity").maps
    assert context[0, box[0], box[1]].sum() / context[0].sum() < 0.1


@pytest.mark.slow
def test_resnet18_fast_equals_reference():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(12)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    layer = model.layer4[1].conv2
    images = torch.randn(2, 3, 64, 64)
    targets = torch.tensor([3, 7])
    result = score_cam(model, layer, images, targets, batch_size=256, mode="parity")  # 2 x 512 rows packed into 256s
    expected = score_cam_reference(model, layer, images[1:], int(targets[1]))
    assert (result.maps[1] - expected).abs().max() <= 1e-5


def test_entry_point_maps_parity_to_mask_mode_and_returns_stats():
    model = small_cnn(seed=13)
    images, targets = images_and_targets(count=2, size=(16, 16))
    assert SALIENCY_METHODS == ("scorecam", "gradcampp", "smoothgradcampp")
    result = saliency_maps(model, model[2], images, targets, parity=False, batch_size=4)
    assert isinstance(result, SaliencyResult)
    assert result.stats["mode"] == "minmax" and result.stats["method"] == "scorecam"
    direct = score_cam(model, model[2], images, targets, mode="minmax").maps
    assert (result.maps - direct).abs().max() <= 1e-6
    for key in ("channels_total", "channels_evaluated", "skip_fraction", "masked_forwards", "seconds_masks",
                "seconds_forward", "seconds_other"):
        assert key in result.stats


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m, x, t: saliency_maps(m, m[2], x, t, method="lime"), "unknown saliency method 'lime'"),
        (lambda m, x, t: saliency_maps(m, m[2], x, t, n_samples=3), "option 'n_samples' does not apply to scorecam"),
        (lambda m, x, t: score_cam(m, m[2], x, t, mode="shift"), "Score-CAM mode 'shift' is unknown"),
        (lambda m, x, t: score_cam(m, m[2], x, t, weight="logit", mode="parity"), "Score-CAM weight 'logit' is unknown"),
        (lambda m, x, t: score_cam(m, m[2], x, t, batch_size=0, mode="parity"), "batch_size must be a positive integer, got 0"),
        (lambda m, x, t: score_cam(m, m[2], x, torch.tensor([0, 5]), mode="parity"), "target class 5 is out of range"),
        (lambda m, x, t: score_cam(m, m[2], x, torch.tensor([0]), mode="parity"), "targets must be integer class ids of shape [2]"),
        (lambda m, x, t: score_cam(m, m[2], x[0], t, mode="parity"), "images must be a floating-point tensor [B, C, H, W]"),
        (lambda m, x, t: score_cam(m, nn.Conv2d(3, 3, 1), x, t, mode="parity"), "is not a submodule of the model"),
        (lambda m, x, t: score_cam(m, m[5], x, t, mode="parity"), "must output a 4-D tensor"),
        (lambda m, x, t: score_cam(m.train(), m[2], x, t, mode="parity"), "model is in training mode"),
    ],
)
def test_bad_input_is_a_usage_error(call, message):
    model = small_cnn(seed=14)
    images, _ = images_and_targets(count=2, size=(12, 12))
    with pytest.raises(UsageError) as info:
        call(model, images, torch.tensor([0, 1]))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert not model[2]._forward_hooks and not model[5]._forward_hooks


@pytest.mark.slow
def test_compiled_masked_passes_give_the_eager_maps():
    from rtool.score.saliency.scorecam import score_cam as fast_score_cam

    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 12, 3, stride=2),
                                torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(12, 5)).eval()
    images = torch.randn(3, 3, 20, 20)
    targets = torch.tensor([0, 3, 4])
    eager = fast_score_cam(model, model[2], images, targets, batch_size=16, mode="parity")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="torch.compile failed")  # a silent eager fallback is a failure
        compiled = fast_score_cam(model, model[2], images, targets, batch_size=16, compile=True, mode="parity")  # last batch padded
    torch.testing.assert_close(compiled.maps, eager.maps, atol=1e-5, rtol=0, equal_nan=True)
    assert compiled.channels_evaluated == eager.channels_evaluated
