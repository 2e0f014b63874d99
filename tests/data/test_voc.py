"""Pascal VOC: one sample per (image, class present) with that class's boxes, difficult handling, skips."""
from __future__ import annotations

import pytest
import torch

from fixtures.voc_layout import make_voc
from rtool.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from rtool.data.voc import VOC_CLASSES, VOCPairs
from rtool.errors import UsageError

PRE = Preprocess.corrected(80, 80, IMAGENET_MEAN, IMAGENET_STD)


def test_voc_classes_standard_order():
    assert len(VOC_CLASSES) == 20
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[11] == "dog" and VOC_CLASSES[14] == "person"
    assert VOC_CLASSES == sorted(VOC_CLASSES)


def test_pairs_found_exactly_with_reasons(tmp_path):
    fx = make_voc(tmp_path)
    ds = VOCPairs(fx.devkit, year="2007", image_set="val", preprocess=PRE)
    assert [e.key for e in ds.entries] == [p.key for p in fx.pairs]
    assert ds.labels == [p.label for p in fx.pairs]
    assert ds.class_names == VOC_CLASSES
    reasons = dict(ds.skipped)
    assert set(reasons) == set(fx.skipped)
    for key, word in fx.skipped.items():
        assert word in reasons[key], (key, reasons[key])
    # The image outside the image set never appears.
    assert not any("000100" in e.key for e in ds.entries)


def test_boxes_are_zero_based_and_only_the_pairs_class(tmp_path):
    fx = make_voc(tmp_path)
    ds = VOCPairs(fx.devkit, preprocess=PRE)
    for i, pair in enumerate(fx.pairs):
        # 1-based inclusive in the file -> exactly the drawn 0-based half-open rectangle.
        assert ds.entries[i].boxes.tolist() == [list(b) for b in pair.boxes]
        sample = ds[i]
        assert sample.label == pair.label and sample.key == pair.key
        rgb = sample.image * torch.tensor(PRE.std).view(3, 1, 1) + torch.tensor(PRE.mean).view(3, 1, 1)
        colour = torch.tensor(pair.colour, dtype=torch.float32).view(3, 1, 1) / 255
        on_object = (rgb - colour).abs().amax(dim=0) < 0.12
        inside = torch.zeros_like(on_object)
        for xmin, ymin, xmax, ymax in sample.boxes.tolist():
            assert on_object[ymin + 1:ymax - 1, xmin + 1:xmax - 1].float().mean() > 0.97
            inside[max(ymin - 1, 0):ymax + 1, max(xmin - 1, 0):xmax + 1] = True
        # This class's colour appears nowhere else (the difficult box is not part of the sample).
        if not pair.difficult_boxes:
            assert not on_object[~inside].any()


def test_person_pair_has_both_boxes_and_dog_pair_one(tmp_path):
    fx = make_voc(tmp_path)
    ds = VOCPairs(fx.devkit, preprocess=PRE)
    by_key = {e.key: e for e in ds.entries}
    assert by_key["VOC2007/000001/person"].boxes.shape == (2, 4)
    assert by_key["VOC2007/000001/dog"].boxes.shape == (1, 4)


def test_difficult_boxes_kept_when_asked(tmp_path):
    fx = make_voc(tmp_path)
    ds = VOCPairs(fx.devkit, preprocess=PRE, skip_difficult=False)
    by_key = {e.key: e for e in ds.entries}
    assert by_key["VOC2007/000002/cat"].boxes.tolist() == [[10, 20, 70, 90], [80, 120, 110, 170]]
    assert by_key["VOC2007/000003/bird"].boxes.tolist() == [[30, 30, 60, 60]]
    assert len(ds) == len(fx.pairs) + len(fx.difficult_only)
    assert not any("difficult" in reason for _, reason in ds.skipped)


@pytest.mark.parametrize("where", ["devkit", "year_dir", "parent"])
def test_root_may_be_devkit_year_folder_or_its_parent(tmp_path, where):
    fx = make_voc(tmp_path)
    root = {"devkit": fx.devkit, "year_dir": fx.year_dir, "parent": tmp_path}[where]
    assert [e.key for e in VOCPairs(root, preprocess=PRE).entries] == [p.key for p in fx.pairs]


def test_2012_and_other_image_sets(tmp_path):
    fx = make_voc(tmp_path, year="2012", image_set="trainval", defects=False)
    ds = VOCPairs(fx.devkit, year="2012", image_set="trainval", preprocess=PRE)
    assert [e.key for e in ds.entries] == [p.key for p in fx.pairs]
    assert ds.entries[0].key.startswith("VOC2012/")


def test_bad_arguments_are_usage_errors(tmp_path):
    fx = make_voc(tmp_path)
    with pytest.raises(UsageError, match="image set 'test'.*expected one of"):
        VOCPairs(fx.devkit, image_set="test", preprocess=PRE)
    with pytest.raises(UsageError, match="VOC year '2013'"):
        VOCPairs(fx.devkit, year="2013", preprocess=PRE)
    with pytest.raises(UsageError, match="no VOC2012 folder"):
        VOCPairs(fx.devkit, year="2012", preprocess=PRE)
    with pytest.raises(UsageError, match="no such directory"):
        VOCPairs(tmp_path / "nothing", preprocess=PRE)
