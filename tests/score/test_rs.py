"""RS / CRS arithmetic (spec §1), ranking and flags, and the box-hiding probe."""

import pytest
import torch

from rtool.score.probe import hide_boxes
from rtool.score.results import ImageScores, ScoreResult, class_scores, rank_and_flag
from rtool.score.rs import area_fractions, robustness_scores


def box(x0, y0, x1, y1):
    return torch.tensor([[x0, y0, x1, y1]])


def test_rs_is_share_of_saliency_inside_the_box():
    maps = torch.zeros(3, 10, 10)
    maps[0, 2:5, 3:7] = 1.0                 # all mass inside the box
    maps[1] = 0.5                           # uniform: RS = box area share
    maps[2, 0, 0] = 1.0                     # all mass outside
    maps[2, 3, 3] = 1.0                     # ... except one pixel of two
    boxes = [box(3, 2, 7, 5), box(0, 0, 5, 2), box(3, 3, 4, 4)]
    rs = robustness_scores(maps, boxes)
    torch.testing.assert_close(rs, torch.tensor([1.0, 0.1, 0.5]))


def test_overlapping_boxes_count_once_and_clamp_to_frame():
    maps = torch.ones(1, 4, 4)
    boxes = [torch.tensor([[0, 0, 2, 2], [1, 1, 3, 3], [-5, 3, 99, 99]])]  # union: 7 + 4 = 11 pixels
    torch.testing.assert_close(robustness_scores(maps, boxes), torch.tensor([11 / 16]))
    torch.testing.assert_close(area_fractions(boxes, 4, 4), torch.tensor([11 / 16]))


def test_nan_and_zero_maps_score_zero_and_values_clamp_at_one():
    maps = torch.stack([torch.full((4, 4), float("nan")), torch.zeros(4, 4), torch.ones(4, 4)])
    maps[2, 0, 0] = 5.0  # clamped to 1 before summing
    rs = robustness_scores(maps, [box(0, 0, 2, 2)] * 3)
    assert rs[0] == 0 and rs[1] == 0
    assert rs[2].item() == pytest.approx(4 / 16)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="one box set per map"):
        robustness_scores(torch.zeros(2, 4, 4), [box(0, 0, 1, 1)])


def image_scores(labels, rs, top5):
    n = len(labels)
    return ImageScores(keys=[f"k{i}" for i in range(n)], label=torch.tensor(labels), rs=torch.tensor(rs).double(),
                       top1=torch.tensor(top5), top5=torch.tensor(top5), pred=torch.tensor(labels),
                       area=torch.full((n,), 0.25).double(), nan_map=torch.zeros(n, dtype=torch.bool))


def test_class_scores_rank_and_flag():
    images = image_scores([0, 0, 1, 1, 2, 2], [0.9, 0.7, 0.1, 0.3, 0.5, 0.4], [True, True, True, False, True, True])
    classes = class_scores(images, ["a", "b", "c"])
    by_id = {c.id: c for c in classes}
    assert by_id[0].crs == pytest.approx(0.8) and by_id[1].crs == pytest.approx(0.2)
    assert by_id[1].acc == pytest.approx(0.5) and by_id[0].acc == 1.0
    assert by_id[2].size_adjusted == pytest.approx(0.45 / 0.25)
    assert by_id[0].crs_std == pytest.approx(0.1)
    ranking, flagged = rank_and_flag(classes, threshold=0.3, bottom_k=0)
    assert ranking == [1, 2, 0] and flagged == [1]
    ranking, flagged = rank_and_flag(classes, threshold=0.3, bottom_k=2)
    by_id = ScoreResult.from_classes(images, classes, threshold=0.3, bottom_k=2).by_id()
    assert flagged == [1, 2] and by_id[2].flagged and not by_id[0].flagged


def test_image_scores_round_trip_through_a_record():
    images = image_scores([0, 1], [0.5, 0.25], [True, False])
    back = ImageScores.concat([ImageScores.from_record(images.to_record()), ImageScores.empty()])
    assert back.keys == images.keys and torch.equal(back.rs, images.rs) and torch.equal(back.top5, images.top5)


def test_hide_boxes_fills_with_the_mean():
    images = torch.ones(2, 3, 6, 6)
    hidden = hide_boxes(images, [box(1, 1, 3, 4), box(0, 0, 0, 0)])
    assert hidden[0, :, 1:4, 1:3].abs().sum() == 0
    assert hidden[0].sum() == 3 * (36 - 6)
    assert torch.equal(hidden[1], images[1])
