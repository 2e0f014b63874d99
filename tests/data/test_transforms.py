"""Preprocessing: the parity box recipe against hand-worked examples and a literal transcription of the
spec, the corrected box mapping against the pixels of the transformed image, and the box-union mask."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision import transforms as T

from rtool.data.sample import BoxSample, box_area_fraction, collate_samples, union_mask
from rtool.data.transforms import (CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, Preprocess,
                                   center_crop_offset, resized_size)
from rtool.errors import UsageError


def spec_parity_box(box, W0, H0, S):
    """Spec robustness_score.md section 2, steps 1-4, written out literally."""
    if H0 > W0:
        newW, newH = S, int(S * H0 / W0)
    else:
        newW, newH = int(S * W0 / H0), S
    xmin, ymin, xmax, ymax = box
    xmin, xmax = int(xmin * newW / W0), int(xmax * newW / W0)
    ymin, ymax = int(ymin * newH / H0), int(ymax * newH / H0)
    if newW > S:
        xmin, xmax = xmin - (newW - S) // 2, xmax - (newW - S) // 2
    if newH > S:
        ymin, ymax = ymin - (newH - S) // 2, ymax - (newH - S) // 2
    return [max(xmin, 0), max(ymin, 0), max(xmax, 0), max(ymax, 0)]


# ---- presets ----------------------------------------------------------------------------------------

def test_parity_preset_uses_cifar_stats_and_resize_equal_crop():
    pre = Preprocess.for_parity(224)
    assert pre.parity is True
    assert (pre.resize, pre.crop) == (224, 224)
    assert pre.mean == CIFAR10_MEAN and pre.std == CIFAR10_STD


def test_corrected_preset_is_the_model_eval_transform():
    pre = Preprocess.corrected(256, 224, IMAGENET_MEAN, IMAGENET_STD)
    assert pre.parity is False
    assert (pre.resize, pre.crop, pre.mean, pre.std) == (256, 224, IMAGENET_MEAN, IMAGENET_STD)
    # Still a plain frozen dataclass.
    assert dataclasses.replace(pre, crop=200).crop == 200
    with pytest.raises(dataclasses.FrozenInstanceError):
        pre.parity = True


@pytest.mark.parametrize("kwargs, message", [
    (dict(resize=0, crop=224), "resize=0"),
    (dict(resize=256, crop=-1), "crop=-1"),
    (dict(resize=256, crop=224, mean=(0.5, 0.5)), "expected 3 values"),
    (dict(resize=256, crop=224, std=(0.2, 0.0, 0.2)), "positive"),
])
def test_bad_preprocess_values_are_usage_errors(kwargs, message):
    args = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD) | kwargs
    with pytest.raises(UsageError, match=message):
        Preprocess(**args)


def test_apply_image_matches_torchvision_eval_transform():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (150, 211, 3), dtype=np.uint8))
    pre = Preprocess.corrected(72, 64, IMAGENET_MEAN, IMAGENET_STD)
    reference = T.Compose([T.Resize(72), T.CenterCrop(64), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    out = pre.apply_image(image)
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    assert torch.equal(out, reference(image))


# ---- parity boxes ---------------------------------------------------------------------------------------

def test_parity_box_landscape_by_hand():
    # 500x375, S=224: newW = int(224*500/375) = 298, offset (298-224)//2 = 37.
    # x: int(10*298/500)=5 -> -32 -> 0; int(300*298/500)=178 -> 141. y: int(20*224/375)=11; int(400*224/375)=238.
    boxes = Preprocess.for_parity(224).apply_boxes(torch.tensor([[10, 20, 300, 400]]), 500, 375)
    assert boxes.tolist() == [[0, 11, 141, 238]]  # ymax 238 > 224 stays: uppers are not clamped
    assert boxes.dtype == torch.int64


def test_parity_box_portrait_by_hand():
    # 375x500, S=224: newH = int(224*500/375) = 298, offset 37 on y.
    # x: int(50*224/375)=29, int(200*224/375)=119. y: int(100*298/500)=59 -> 22; int(450*298/500)=268 -> 231.
    boxes = Preprocess.for_parity(224).apply_boxes(torch.tensor([[50, 100, 200, 450]]), 375, 500)
    assert boxes.tolist() == [[29, 22, 119, 231]]


def test_parity_box_odd_margin_floors_where_torchvision_rounds():
    # 303x200, S=100: newW = int(100*303/200) = 151, margin 51 is odd: parity offset 51//2 = 25 while
    # torchvision's CenterCrop shifts by round(25.5) = 26.
    assert resized_size(303, 200, 100) == (151, 100)
    assert center_crop_offset(151, 100) == 26
    # x: int(120*151/303)=int(59.80)=59 -> 34; int(201*151/303)=int(100.17)=100 -> 75. y: scale 0.5, no crop.
    box = torch.tensor([[120, 10, 201, 190]])
    assert Preprocess.for_parity(100).apply_boxes(box, 303, 200).tolist() == [[34, 5, 75, 95]]
    # Corrected: 59.80 - 26 = 33.80 -> 34; 100.17 - 26 = 74.17 -> 74: one pixel left of the parity box.
    corrected = Preprocess.corrected(100, 100, CIFAR10_MEAN, CIFAR10_STD).apply_boxes(box, 303, 200)
    assert corrected.tolist() == [[34, 5, 74, 95]]


def test_parity_clamps_negatives_only():
    # A box entirely left of the crop collapses to xmin = xmax = 0; a box past the right edge keeps its xmax.
    boxes = Preprocess.for_parity(100).apply_boxes(torch.tensor([[0, 0, 20, 50], [280, 0, 300, 50]]), 300, 100)
    assert boxes.tolist() == [[0, 0, 0, 50], [180, 0, 200, 50]]


@settings(max_examples=300, deadline=None)
@given(W0=st.integers(8, 900), H0=st.integers(8, 900), S=st.sampled_from([7, 64, 224, 300]),
       data=st.data())
def test_parity_boxes_follow_the_spec_literally(W0, H0, S, data):
    x0 = data.draw(st.integers(0, W0 - 1))
    x1 = data.draw(st.integers(x0 + 1, W0))
    y0 = data.draw(st.integers(0, H0 - 1))
    y1 = data.draw(st.integers(y0 + 1, H0))
    got = Preprocess.for_parity(S).apply_boxes(torch.tensor([[x0, y0, x1, y1]]), W0, H0)
    assert got.tolist() == [spec_parity_box((x0, y0, x1, y1), W0, H0, S)]


# ---- corrected boxes against pixels -------------------------------------------------------------------------

def _rectangle_image(width, height, box):
    pixels = np.full((height, width, 3), 128, dtype=np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = (230, 20, 20)
    return Image.fromarray(pixels)


def _red_mask(tensor, pre):
    rgb = tensor * torch.tensor(pre.std).view(3, 1, 1) + torch.tensor(pre.mean).view(3, 1, 1)
    return (rgb[0] - rgb[1]) > 0.35  # clearly red, vs grey (0) and mixed edge pixels


@pytest.mark.parametrize("size, box", [
    ((300, 200), (120, 40, 230, 170)),  # landscape
    ((200, 310), (30, 150, 160, 290)),  # portrait
    ((303, 200), (100, 30, 220, 180)),  # odd crop margin (banker's rounding offset)
    ((257, 257), (10, 10, 90, 200)),  # square
    ((480, 211), (0, 20, 240, 211)),  # touches the border: part is cropped away
])
@pytest.mark.parametrize("resize, crop", [(256, 224), (73, 64), (64, 64), (50, 64)])  # last: crop pads
def test_corrected_box_covers_exactly_the_drawn_rectangle(size, box, resize, crop):
    pre = Preprocess.corrected(resize, crop, IMAGENET_MEAN, IMAGENET_STD)
    image = _rectangle_image(*size, box)
    tensor, boxes = pre.apply(image, torch.tensor([box]))
    red = _red_mask(tensor, pre)
    inside = union_mask(boxes, crop, crop)
    assert red.any()
    # Away from the edges the two agree exactly; only a 1-pixel band may differ (interpolated borders).
    xmin, ymin, xmax, ymax = boxes[0].tolist()
    core = union_mask(torch.tensor([[xmin + 1, ymin + 1, xmax - 1, ymax - 1]]), crop, crop)
    grown = union_mask(torch.tensor([[xmin - 1, ymin - 1, xmax + 1, ymax + 1]]), crop, crop)
    assert red[core].all()
    assert not red[~grown].any()
    assert (red != inside).float().mean() < 0.03


def test_parity_box_is_near_the_drawn_rectangle():
    # The parity recipe floors, so it may sit a pixel or two off, never more.
    pre = Preprocess.for_parity(224)
    image = _rectangle_image(303, 200, (100, 30, 220, 180))
    tensor, boxes = pre.apply(image, torch.tensor([[100, 30, 220, 180]]))
    red = _red_mask(tensor, pre)
    rows, cols = torch.nonzero(red, as_tuple=True)
    drawn = [cols.min().item(), rows.min().item(), cols.max().item() + 1, rows.max().item() + 1]
    assert all(abs(a - b) <= 2 for a, b in zip(boxes[0].tolist(), drawn))


# ---- masks ------------------------------------------------------------------------------------------------

def test_union_mask_clamps_truncates_and_counts_overlap_once():
    boxes = torch.tensor([[-3, -2, 2, 3], [1, 1, 4, 4], [6, 5, 20, 30]])
    mask = union_mask(boxes, 8, 10)
    expected = torch.zeros(8, 10, dtype=torch.bool)
    expected[0:3, 0:2] = True
    expected[1:4, 1:4] = True
    expected[5:8, 6:10] = True
    assert mask.dtype == torch.bool and torch.equal(mask, expected)
    assert box_area_fraction(boxes, 8, 10) == pytest.approx(expected.sum().item() / 80)


def test_union_mask_rows_are_y_and_half_open():
    mask = union_mask(torch.tensor([[2, 5, 3, 7]]), 10, 10)  # x in [2, 3), y in [5, 7)
    assert torch.nonzero(mask).tolist() == [[5, 2], [6, 2]]


def test_empty_and_degenerate_boxes_give_empty_mask():
    assert not union_mask(torch.zeros(0, 4, dtype=torch.int64), 5, 5).any()
    assert not union_mask(torch.tensor([[0, 0, 0, 5], [3, 3, 2, 4]]), 5, 5).any()
    assert box_area_fraction(torch.zeros(0, 4, dtype=torch.int64), 5, 5) == 0.0


def test_collate_keeps_per_image_boxes():
    samples = [BoxSample(torch.zeros(3, 4, 4), 1, torch.tensor([[0, 0, 2, 2]]), "a"),
               BoxSample(torch.ones(3, 4, 4), 7, torch.tensor([[0, 0, 1, 1], [2, 2, 4, 4]]), "b")]
    batch = collate_samples(samples)
    assert batch.images.shape == (2, 3, 4, 4)
    assert batch.labels.tolist() == [1, 7]
    assert [b.shape[0] for b in batch.boxes] == [1, 2]
    assert batch.keys == ["a", "b"]
