"""The embedded `shapes` dataset: exact tight boxes, the planted stripe cue, determinism, probe variants."""
from __future__ import annotations

import pytest
import torch

from rtool.data.folder import BoxFolder
from rtool.data.shapes import (ShapesConfig, ShapesDataset, channel_stats, class_folder_name, generate_shapes,
                               load_shapes, write_folder)
from rtool.data.shapes_draw import SHAPE_NAMES
from rtool.data.transforms import Preprocess
from rtool.errors import UsageError

SMALL = ShapesConfig(n_train_per_class=12, n_val_per_class=20, seed=3)


@pytest.fixture(scope="module")
def val():
    return generate_shapes(SMALL, "val")


def stripe_power(images: torch.Tensor) -> torch.Tensor:
    """Share of each image's (mean-removed) spectral power at spatial periods of about 6 px."""
    x = images.float()
    x = x - x.mean(dim=(2, 3), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2).sum(dim=1)
    f = torch.fft.fftfreq(x.shape[-1]) * x.shape[-1]
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    radius = (fx ** 2 + fy ** 2).sqrt()
    ring = (radius > x.shape[-1] / 6 - 1.2) & (radius < x.shape[-1] / 6 + 1.4)
    return (power * ring).sum(dim=(1, 2)) / power.sum(dim=(1, 2))


def stripe_direction(images: torch.Tensor) -> float:
    """Dominant direction (degrees in [0, 180)) across the stripes, from the summed spectrum's peak."""
    x = images.float() - images.float().mean(dim=(2, 3), keepdim=True)
    power = (torch.fft.fft2(x).abs() ** 2).sum(dim=(0, 1))
    f = torch.fft.fftfreq(x.shape[-1]) * x.shape[-1]
    fy, fx = torch.meshgrid(f, f, indexing="ij")
    radius = (fx ** 2 + fy ** 2).sqrt()
    power[(radius < 8) | (radius > 13)] = 0
    i = int(power.argmax())
    return float(torch.rad2deg(torch.atan2(fy.flatten()[i], fx.flatten()[i])) % 180)


def test_layout_and_types(val):
    n = 10 * SMALL.n_val_per_class
    assert val.images.shape == (n, 3, 64, 64) and val.images.dtype == torch.uint8
    assert val.labels.tolist() == [c for c in range(10) for _ in range(SMALL.n_val_per_class)]
    assert val.boxes.shape == (n, 4) and val.boxes.dtype == torch.int64
    assert val.planted == (1, 4, 7) and val.split == "val"
    assert val.class_names == SHAPE_NAMES and len(set(SHAPE_NAMES)) == 10


def test_boxes_are_exact_tight_boxes_of_the_object(val):
    for i in range(len(val)):
        xmin, ymin, xmax, ymax = val.boxes[i].tolist()
        touched = val.coverage[i] > 0
        assert 0 <= xmin < xmax <= 64 and 0 <= ymin < ymax <= 64
        box = torch.zeros_like(touched)
        box[ymin:ymax, xmin:xmax] = True
        assert not touched[~box].any()  # every object pixel is inside
        # Each border row and column of the box holds object pixels: nothing to trim.
        assert touched[ymin, xmin:xmax].any() and touched[ymax - 1, xmin:xmax].any()
        assert touched[ymin:ymax, xmin].any() and touched[ymin:ymax, xmax - 1].any()


def test_object_pixels_show_the_object_colour_not_the_background(val):
    # Fully covered pixels are flat (one colour per object); the object is drawn anti-aliased at its rim.
    for i in range(0, len(val), 7):
        full = val.coverage[i] == 255
        colours = val.images[i][:, full]
        assert full.sum() > 20
        assert (colours.max(dim=1).values - colours.min(dim=1).values).max() <= 1
        assert ((val.coverage[i] > 0) & (val.coverage[i] < 255)).any()


def test_object_size_follows_the_recipe(val):
    sides = (val.boxes[:, 2:] - val.boxes[:, :2]).amax(dim=1).float() / 64
    assert sides.min() >= 0.33 and sides.max() <= 0.6
    area = ((val.boxes[:, 2] - val.boxes[:, 0]) * (val.boxes[:, 3] - val.boxes[:, 1])).float() / 64 ** 2
    assert 0.12 < area.mean() < 0.28  # about 20% of the image


def test_planted_classes_have_stripes_and_the_others_do_not(val):
    power = stripe_power(val.images)
    planted = torch.isin(val.labels, torch.tensor(val.planted))
    assert power[planted].min() > 0.1
    assert power[~planted].max() < 0.08
    assert (val.cue[planted] == val.labels[planted]).all() and (val.cue[~planted] == -1).all()


def test_each_planted_class_has_its_own_stripe_direction(val):
    for planted_class, expected in zip(val.planted, (0.0, 60.0, 120.0)):
        assert SMALL.cue_orientation(planted_class) == expected
        direction = stripe_direction(val.images[val.labels == planted_class])
        gap = abs(direction - expected) % 180
        assert min(gap, 180 - gap) < 8, (planted_class, direction)


def test_deterministic_per_seed():
    a = generate_shapes(SMALL, "train")
    b = generate_shapes(SMALL, "train")
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes)
    other_seed = generate_shapes(ShapesConfig(n_train_per_class=12, seed=4), "train")
    assert not torch.equal(a.images, other_seed.images)
    val = generate_shapes(SMALL, "val")
    assert not torch.equal(a.images[:12], val.images[:12])  # splits differ


def test_cue_probability():
    none = generate_shapes(ShapesConfig(n_val_per_class=40, cue_probability=0.0), "val")
    assert (none.cue == -1).all() and stripe_power(none.images).max() < 0.08
    half = generate_shapes(ShapesConfig(n_val_per_class=40, cue_probability=0.5), "val")
    share = (half.cue[torch.isin(half.labels, torch.tensor(half.planted))] >= 0).float().mean()
    assert 0.3 < share < 0.7


def test_no_cue_variant_keeps_objects_and_drops_stripes(val):
    plain = generate_shapes(SMALL, "val", cue="none")
    assert torch.equal(plain.coverage, val.coverage) and torch.equal(plain.boxes, val.boxes)
    assert (plain.cue == -1).all()
    assert stripe_power(plain.images).max() < 0.08
    unplanted = ~torch.isin(val.labels, torch.tensor(val.planted))
    assert torch.equal(plain.images[unplanted], val.images[unplanted])  # same pool backgrounds


def test_swap_variant_draws_objects_on_another_classs_cue(val):
    swapped = generate_shapes(SMALL, "val", cue="swap")
    assert torch.equal(swapped.boxes, val.boxes)
    assert (swapped.cue >= 0).all() and (swapped.cue != swapped.labels).all()
    assert torch.isin(swapped.cue, torch.tensor(val.planted)).all()
    assert stripe_power(swapped.images).min() > 0.1


def test_dataset_normalises_with_given_stats(val):
    mean, std = channel_stats(generate_shapes(SMALL, "train"))
    assert all(0.2 < m < 0.8 for m in mean) and all(0.1 < s < 0.5 for s in std)
    ds = ShapesDataset(val, mean, std)
    sample = ds[25]
    assert sample.key == "shapes/val/000025" and sample.label == 1
    assert sample.image.dtype == torch.float32 and sample.image.shape == (3, 64, 64)
    back = sample.image * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
    assert torch.allclose(back * 255, val.images[25].float(), atol=1e-3)
    assert sample.boxes.tolist() == [val.boxes[25].tolist()]
    assert (ds.mean, ds.std, ds.skipped, ds.class_names) == (mean, std, [], SHAPE_NAMES)
    assert torch.allclose(ds.normalise(val.images[25:26])[0], sample.image)


def test_load_shapes_uses_training_statistics():
    ds = load_shapes(SMALL, "val", cue="none")
    assert (ds.mean, ds.std) == channel_stats(generate_shapes(SMALL, "train"))
    assert ds[0].key == "shapes/val-none/000000" and len(ds) == 200


def test_write_folder_round_trips_through_box_folder(tmp_path, val):
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    root = write_folder(val, tmp_path / "shapes")
    assert sorted(p.name for p in root.iterdir()) == [class_folder_name(c) for c in range(10)]
    folder = BoxFolder(root, Preprocess.corrected(64, 64, mean, std))
    assert folder.skipped == [] and len(folder) == len(val)
    shapes = ShapesDataset(val, mean, std)
    assert folder.labels == val.labels.tolist()
    for i in range(0, len(val), 13):
        a, b = folder[i], shapes[i]
        assert a.label == b.label and torch.equal(a.boxes, b.boxes)
        assert torch.allclose(a.image, b.image, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(planted=(1, 10)), "planted classes"),
    (dict(planted=(2, 2)), "distinct"),
    (dict(cue_probability=1.5), "cue_probability=1.5"),
    (dict(image_size=8), "image_size=8"),
    (dict(n_val_per_class=-1), "n_val_per_class=-1"),
])
def test_bad_config_is_a_usage_error(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ShapesConfig(**kwargs)


def test_bad_split_or_mode():
    with pytest.raises(UsageError, match="split 'test'"):
        generate_shapes(SMALL, "test")
    with pytest.raises(UsageError, match="cue mode 'random'"):
        generate_shapes(SMALL, "val", cue="random")


def test_default_config_matches_the_recipe():
    config = ShapesConfig()
    assert (config.n_train_per_class, config.n_val_per_class, config.image_size) == (600, 50, 64)
    assert config.planted == (1, 4, 7) and config.cue_probability == 1.0 and config.seed == 0
    val = generate_shapes(config, "val")
    assert len(val) == 500
    power = stripe_power(val.images)
    planted = torch.isin(val.labels, torch.tensor(config.planted))
    assert power[planted].min() > 0.1 and power[~planted].max() < 0.08
