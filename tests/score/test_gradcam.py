"""Grad-CAM++ and SmoothGrad-CAM++ vs a per-image transcription of the formulas, batching, quirks, planted truth."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rtool.errors import UsageError
from rtool.score.saliency import grad_cam_pp, saliency_maps, smooth_grad_cam_pp


def small_cnn(seed: int = 0, classes: int = 6, inplace: bool = False) -> nn.Sequential:
    """3 -> 8 -> 16 channels with BatchNorm (random running stats, eval mode); index 3 is the conv to explain."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(inplace=inplace),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, classes),
    )
    with torch.no_grad():
        model[1].running_mean.normal_(0, 0.2)
        model[1].running_var.uniform_(0.5, 2.0)
        model[3].bias[[2, 9]] = -50.0  # two channels that are never positive
    return model.eval()


def batch(count=3, size=(29, 35), classes=6, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(count, 3, *size, generator=gen), torch.randint(0, classes, (count,), generator=gen)


def gradcampp_direct(model, layer, image, target):
    """Grad-CAM++ of one image, transcribed from the formula with a tensor hook for the gradient."""
    store = {}

    def keep(module, inputs, output):
        store["A"] = output
        output.register_hook(lambda grad: store.__setitem__("g", grad))

    handle = layer.register_forward_hook(keep)
    try:
        logits = model(image)
        model.zero_grad()
        logits[0, target].backward()
    finally:
        handle.remove()
    A, g = store["A"].detach()[0], store["g"][0]
    numerator = g ** 2
    denominator = 2 * g ** 2 + (A * g ** 3).sum(dim=(1, 2), keepdim=True)
    denominator = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    alpha = numerator / (denominator + 1e-7)
    weights = (alpha * F.relu(logits[0, target].detach().exp() * g)).sum(dim=(1, 2))
    cam = F.relu((weights[:, None, None] * A).sum(dim=0))
    cam = cam - cam.min()
    cam = cam / cam.max()
    return F.interpolate(cam[None, None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]


def test_gradcampp_matches_per_image_transcription():
    model = small_cnn()
    images, targets = batch()
    maps = grad_cam_pp(model, model[3], images, targets)
    assert maps.shape == (3, 29, 35) and maps.dtype == torch.float32
    for i in range(3):
        expected = gradcampp_direct(model, model[3], images[i:i + 1], int(targets[i]))
        assert (maps[i] - expected).abs().max() <= 1e-5
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6


def test_batched_equals_per_image_and_leaves_model_untouched():
    model = small_cnn(seed=2)
    images, targets = batch(count=5, seed=2)
    together = grad_cam_pp(model, model[3], images, targets, batch_size=2)
    for i in range(5):
        alone = grad_cam_pp(model, model[3], images[i:i + 1], targets[i:i + 1])
        assert (together[i] - alone[0]).abs().max() <= 1e-6
    assert not model.training
    assert all(p.grad is None for p in model.parameters())  # no gradient accumulated into the weights
    assert not model[3]._forward_hooks


def test_frozen_weights_and_inplace_ops_after_the_layer():
    reference_model = small_cnn(seed=3)
    images, targets = batch(count=2, seed=3)
    expected = grad_cam_pp(reference_model, reference_model[3], images, targets)
    frozen = small_cnn(seed=3, inplace=True)  # ReLU(inplace=True) right after the explained conv
    for p in frozen.parameters():
        p.requires_grad_(False)
    got = grad_cam_pp(frozen, frozen[3], images, targets)
    assert (got - expected).abs().max() <= 1e-6


def test_smooth_gradcampp_matches_transcription_in_both_modes():
    model = small_cnn(seed=4)
    images, targets = batch(count=2, size=(24, 24), seed=4)
    n, seed = 3, 7
    noise = torch.randn((n, 3, 24, 24), generator=torch.Generator().manual_seed(seed))
    for parity in (True, False):
        got = smooth_grad_cam_pp(model, model[3], images, targets, n_samples=n, seed=seed, parity=parity, batch_size=4)
        for i in range(2):
            x = images[i:i + 1]
            spread = x.max() - x.min()
            std = 0.15 / spread if parity else 0.15 * spread  # parity divides: the authors' quirk
            cams = []
            for j in range(n):
                noisy = x + std * noise[j]
                target = int(model(noisy).argmax()) if parity else int(targets[i])
                cams.append(gradcampp_direct(model, model[3], noisy, target))
            expected = torch.stack(cams).mean(dim=0)
            assert (got[i] - expected).abs().max() <= 1e-5, parity


def test_smooth_gradcampp_is_deterministic_for_a_seed():
    model = small_cnn(seed=5)
    images, targets = batch(count=2, size=(20, 20), seed=5)
    first = smooth_grad_cam_pp(model, model[3], images, targets, n_samples=4, seed=0, parity=True)
    again = smooth_grad_cam_pp(model, model[3], images, targets, n_samples=4, seed=0, batch_size=3, parity=True)
    other = smooth_grad_cam_pp(model, model[3], images, targets, n_samples=4, seed=1, parity=True)
    assert torch.equal(first, again) or (first - again).abs().max() <= 1e-6
    assert (first - other).abs().max() > 1e-3
    # an image's map does not depend on the batch it came in
    alone = smooth_grad_cam_pp(model, model[3], images[1:], targets[1:], n_samples=4, seed=0, parity=True)
    assert (alone[0] - first[1]).abs().max() <= 1e-6


def two_colour_model() -> nn.Sequential:
    """Class 0 = amount of red, class 1 = amount of green; index 1 (ReLU) holds one map per colour."""
    colours = nn.Conv2d(3, 2, 1)
    head = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        colours.weight.zero_()
        colours.bias.fill_(-0.5)  # ignore faint colour (and most of SmoothGrad's noise)
        colours.weight[0, 0] = 1.0
        colours.weight[1, 1] = 1.0
        head.weight.copy_(torch.eye(2) * 10)
    return nn.Sequential(colours, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


def test_parity_smoothgrad_explains_the_prediction_not_the_target():
    model = two_colour_model()
    image = torch.zeros(1, 3, 32, 32)
    red, green = (slice(4, 20), slice(2, 18)), (slice(22, 28), slice(22, 28))
    image[0, 0, red[0], red[1]] = 1.0    # large red patch: predicted class 0
    image[0, 1, green[0], green[1]] = 1.0  # small green patch: the ground truth, class 1
    target = torch.tensor([1])
    assert int(model(image).argmax()) == 0

    def mass(maps, box):
        return float(maps[0, box[0], box[1]].sum() / maps[0].sum())

    parity = saliency_maps(model, model[1], image, target, method="smoothgradcampp", parity=True, n_samples=8).maps
    corrected = saliency_maps(model, model[1], image, target, method="smoothgradcampp", parity=False, n_samples=8).maps
    plain = saliency_maps(model, model[1], image, target, method="gradcampp").maps
    assert mass(parity, red) > 0.6 and mass(parity, green) < 0.1  # follows the prediction
    assert mass(corrected, green) > 0.6 and mass(corrected, red) < 0.1  # follows the target
    assert mass(plain, green) > 0.9


def test_planted_evidence_region():
    """Only a bright red object drives class 1, so Grad-CAM++ for class 1 lies on it."""
    torch.manual_seed(6)
    features = nn.Conv2d(3, 6, 1)
    head = nn.Linear(6, 2)
    with torch.no_grad():
        features.weight.normal_(0, 0.5)
        features.weight[0] = 0
        features.weight[0, 0] = 1.0
        features.bias.zero_()
        features.bias[0] = -1.0
        head.weight.zero_()
        head.weight[1, 0] = 50.0
        head.weight[0, 1:] = 1.0
    model = nn.Sequential(features, nn.ReLU(), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(6)) * 0.9
    box = (slice(10, 18), slice(4, 16))
    image[0, 0, box[0], box[1]] = 2.0
    maps = grad_cam_pp(model, model[2], image, torch.tensor([1]))
    assert maps[0, box[0], box[1]].sum() / maps[0].sum() > 0.85


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda m, x, t: grad_cam_pp(m, m[3], x, torch.tensor([0, 0, 6])), "target class 6 is out of range"),
        (lambda m, x, t: grad_cam_pp(m.train(), m[3], x, t), "model is in training mode"),
        (lambda m, x, t: grad_cam_pp(m, m[3], x, t, batch_size=-1), "batch_size must be a positive integer, got -1"),
        (lambda m, x, t: grad_cam_pp(m, m[8], x, t), "must output a 4-D tensor"),
        (lambda m, x, t: smooth_grad_cam_pp(m, m[3], x, t, n_samples=0, parity=True), "n_samples must be a positive integer, got 0"),
        (lambda m, x, t: saliency_maps(m, m[3], x, t, method="gradcampp", seed=1), "option 'seed' does not apply"),
    ],
)
def test_bad_input_is_a_usage_error(call, message):
    model = small_cnn(seed=7)
    images, targets = batch(count=3, size=(12, 12), seed=7)
    with pytest.raises(UsageError) as info:
        call(model, images, targets)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not model[3]._forward_hooks and not model[8]._forward_hooks


def test_inference_mode_is_refused():
    model = small_cnn(seed=8)
    images, targets = batch(count=1, size=(12, 12), seed=8)
    with torch.inference_mode(), pytest.raises(UsageError, match="needs gradients"):
        grad_cam_pp(model, model[3], images, targets)
