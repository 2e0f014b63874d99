"""BoxFolder: users' ImageFolder tree with a VOC-style XML beside each image."""
from __future__ import annotations

import pytest
import torch

from fixtures.folder_layout import make_box_folder
from rtool.data.folder import BoxFolder
from rtool.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from rtool.errors import UsageError

PRE = Preprocess.corrected(96, 80, IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_folder_finds_exactly_what_was_written(tmp_path, suffix):
    fx = make_box_folder(tmp_path / "mine", suffix=suffix)
    ds = BoxFolder(fx.root, PRE)
    assert ds.class_names == ["apple", "mug", "zebra"]  # sorted folder names, as ImageFolder
    assert [e.key for e in ds.entries] == [i.key for i in fx.images]
    assert ds.labels == [i.label for i in fx.images]
    reasons = dict(ds.skipped)
    assert set(reasons) == set(fx.skipped)
    for key, word in fx.skipped.items():
        assert word in reasons[key], (key, reasons[key])


def test_folder_boxes_land_on_the_objects(tmp_path):
    fx = make_box_folder(tmp_path / "mine")
    ds = BoxFolder(fx.root, PRE)
    for i, expected in enumerate(fx.images):
        assert ds.entries[i].boxes.tolist() == [list(b) for b in expected.boxes]
        sample = ds[i]
        rgb = sample.image * torch.tensor(PRE.std).view(3, 1, 1) + torch.tensor(PRE.mean).view(3, 1, 1)
        for (xmin, ymin, xmax, ymax), colour in zip(sample.boxes.tolist(), expected.colours):
            target = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1) / 255
            on_object = (rgb - target).abs().amax(dim=0) < 0.1
            assert on_object[ymin + 1:ymax - 1, xmin + 1:xmax - 1].all()
            outside = torch.ones_like(on_object)
            outside[max(ymin - 1, 0):ymax + 1, max(xmin - 1, 0):xmax + 1] = False
            assert not on_object[outside].any()


def test_one_based_xml_convention(tmp_path):
    fx = make_box_folder(tmp_path / "mine", defects=False)
    ds = BoxFolder(fx.root, PRE, one_based=True)
    first = fx.images[0].boxes[0]
    assert ds.entries[0].boxes[0].tolist() == [first[0] - 1, first[1] - 1, first[2], first[3]]


def test_folder_errors(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        BoxFolder(tmp_path / "missing", PRE)
    (tmp_path / "flat").mkdir()
    with pytest.raises(UsageError, match="no class subfolders"):
        BoxFolder(tmp_path / "flat", PRE)
    (tmp_path / "flat" / "cat").mkdir()
    with pytest.raises(UsageError, match="no images"):
        BoxFolder(tmp_path / "flat", PRE)
    with pytest.raises(UsageError, match="expected an rtool.data.Preprocess"):
        BoxFolder(tmp_path / "flat", preprocess="imagenet")
