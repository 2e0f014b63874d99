"""ImageNet: class metadata, both on-disk layouts, skips with reasons, boxes on the drawn objects."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from fixtures.imagenet_layout import DEFAULT_LABELS, make_imagenet_val
from rtool.data.imagenet import ImageNetVal
from rtool.data.imagenet_classes import ImageNetClasses, csv_name, load_imagenet_classes
from rtool.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from rtool.errors import UsageError

AUTHORS_CSV = Path("/work/shared/data/robustness_score/ImageNet__ResNet_152__ScoreCAM.csv")
PRE = Preprocess.corrected(72, 64, IMAGENET_MEAN, IMAGENET_STD)


# ---- class metadata -------------------------------------------------------------------------------------

def test_packaged_classes_are_the_standard_order():
    classes = load_imagenet_classes()
    assert len(classes) == 1000 and len(set(classes.wnids)) == 1000
    assert (classes.wnids[0], classes.labels[0]) == ("n01440764", "tench, Tinca tinca")
    assert (classes.wnids[1], classes.labels[1]) == ("n01443537", "goldfish, Carassius auratus")
    assert classes.wnids[2] == "n01484850" and classes.labels[2].startswith("great white shark")
    assert (classes.wnids[430], classes.labels[430]) == ("n02802426", "basketball")
    assert (classes.wnids[999], classes.labels[999]) == ("n15075141", "toilet tissue, toilet paper, bathroom tissue")
    assert classes.index("n02802426") == 430


def test_csv_name_matches_the_authors_spelling():
    assert csv_name("tench, Tinca tinca") == "tench___Tinca_tinca"
    assert csv_name("basketball") == "basketball"
    assert csv_name("jack-o'-lantern") == "jack-o-lantern"
    assert csv_name("carpenter's kit, tool kit") == "carpenter's_kit___tool_kit"


@pytest.mark.skipif(not AUTHORS_CSV.is_file(), reason="the authors' CSVs are not on this machine")
def test_csv_names_equal_all_1000_names_of_the_authors_csv():
    with open(AUTHORS_CSV, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert [int(r["id"]) for r in rows] == list(range(1000))
    assert load_imagenet_classes().csv_names() == [r["name"] for r in rows]


def test_authors_json_formats_and_synset_mapping(tmp_path):
    standard = load_imagenet_classes()
    as_dict = {str(i): {"id": w[1:] + "-n", "label": l, "uri": "x"} for i, (w, l) in enumerate(zip(standard.wnids, standard.labels))}
    (tmp_path / "authors.json").write_text(json.dumps(as_dict))
    (tmp_path / "authors_list.json").write_text(json.dumps(list(as_dict.values())))
    (tmp_path / "keras.json").write_text(json.dumps({str(i): [w, l] for i, (w, l) in enumerate(zip(standard.wnids, standard.labels))}))
    (tmp_path / "LOC_synset_mapping.txt").write_text("".join(f"{w} {l}\n" for w, l in zip(standard.wnids, standard.labels)))
    for name in ("authors.json", "authors_list.json", "keras.json", "LOC_synset_mapping.txt"):
        assert load_imagenet_classes(tmp_path / name) == standard, name


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"0": {"id": "01440764-n", "label": "tench"}, "2": {"id": "01443537-n", "label": "goldfish"}}', "without gaps"),
    ('[{"id": "01440764-n", "label": "a"}, {"id": "01440764-n", "label": "b"}]', "repeats entry 0"),
    ('[{"name": "tench"}]', "expected"),
])
def test_bad_class_maps_are_usage_errors(tmp_path, content, message):
    path = tmp_path / "classes.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load_imagenet_classes(path)


def test_missing_class_map_and_unknown_wnid():
    with pytest.raises(UsageError, match="no such file"):
        load_imagenet_classes("/nonexistent/classes.json")
    with pytest.raises(UsageError, match="n99999999"):
        load_imagenet_classes().index("n99999999")


# ---- datasets ---------------------------------------------------------------------------------------------

def _object_pixels(sample, pre, colour):
    rgb = sample.image * torch.tensor(pre.std).view(3, 1, 1) + torch.tensor(pre.mean).view(3, 1, 1)
    target = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1) / 255.0
    return (rgb - target).abs().amax(dim=0) < 0.12


def _assert_found_exactly(ds, fx):
    assert [e.key for e in ds.entries] == [i.key for i in fx.images]
    assert ds.labels == [i.label for i in fx.images]
    reasons = dict(ds.skipped)
    assert set(reasons) == set(fx.skipped)
    for key, word in fx.skipped.items():
        assert word in reasons[key], (key, reasons[key])


def _assert_boxes_on_objects(ds, fx, pre=PRE):
    for i, expected in enumerate(fx.images):
        assert ds.entries[i].boxes.tolist() == [list(b) for b in expected.boxes]
        sample = ds[i]
        assert sample.key == expected.key and sample.label == expected.label
        assert sample.image.shape == (3, pre.crop, pre.crop) and sample.boxes.dtype == torch.int64
        # Every box, mapped into the crop, sits on the rectangle of its own colour.
        for box, colour in zip(sample.boxes.tolist(), expected.colours):
            xmin, ymin, xmax, ymax = box
            on_object = _object_pixels(sample, pre, colour)
            assert xmax - xmin >= 3 and ymax - ymin >= 3
            assert on_object[ymin + 1:ymax - 1, xmin + 1:xmax - 1].float().mean() > 0.97
            outside = torch.ones_like(on_object)
            outside[max(ymin - 1, 0):ymax + 1, max(xmin - 1, 0):xmax + 1] = False
            assert not on_object[outside].any()


@pytest.mark.parametrize("layout", ["folders", "beside", "flat", "flat-csv"])
def test_loader_finds_exactly_what_was_written(tmp_path, layout):
    fx = make_imagenet_val(tmp_path / "imagenet", layout=layout)
    ds = ImageNetVal(fx.root, preprocess=PRE)
    assert ds.layout == ("flat" if layout.startswith("flat") else "folders")
    _assert_found_exactly(ds, fx)
    _assert_boxes_on_objects(ds, fx)
    assert sorted(set(ds.labels)) == sorted(DEFAULT_LABELS.values())
    assert ds.class_names[430] == "basketball" and len(ds.class_names) == 1000
    assert (ds.mean, ds.std) == (IMAGENET_MEAN, IMAGENET_STD)


def test_parity_preprocess_on_the_real_layout(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    pre = Preprocess.for_parity(64)
    ds = ImageNetVal(fx.root, preprocess=pre)
    sample = ds[0]
    assert sample.image.shape == (3, 64, 64)
    expected = pre.apply_boxes(torch.tensor(fx.images[0].boxes), fx.images[0].width, fx.images[0].height)
    assert torch.equal(sample.boxes, expected)


def test_explicit_bbox_dir(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", layout="folders", defects=False)
    moved = tmp_path / "elsewhere"
    fx.bbox_dir.rename(moved)
    with_dir = ImageNetVal(fx.root, bbox_dir=moved, preprocess=PRE)
    assert [e.key for e in with_dir.entries] == [i.key for i in fx.images]
    without = ImageNetVal(fx.root, preprocess=PRE)  # the default places find nothing now
    assert len(without) == 0 and all(reason == "no bbox XML" for _, reason in without.skipped)
    with pytest.raises(UsageError, match="no such directory"):
        ImageNetVal(fx.root, bbox_dir=tmp_path / "missing", preprocess=PRE)


def test_root_holding_wnid_folders_directly(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", layout="beside", defects=False)
    ds = ImageNetVal(fx.root / "val", preprocess=PRE)
    assert len(ds) == len(fx.images)
    assert ds.entries[0].key == Path(fx.images[0].key).relative_to("val").as_posix()


def test_limit_per_class_and_class_subset(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", per_class=3)
    ds = ImageNetVal(fx.root, preprocess=PRE, limit_per_class=2)
    assert sorted(ds.labels) == [0, 0, 1, 1, 430, 430]
    # The limit counts usable images: class 0's defective files sort after its good ones and are not reached.
    assert ds.skipped == []
    subset = ImageNetVal(fx.root, preprocess=PRE, class_subset=["n02802426", 1])
    assert sorted(set(subset.labels)) == [1, 430] and len(subset) == 6
    flat = make_imagenet_val(tmp_path / "flat", per_class=3, layout="flat")
    assert sorted(ImageNetVal(flat.root, preprocess=PRE, limit_per_class=1).labels) == [0, 1, 430]
    with pytest.raises(UsageError, match="out of range"):
        ImageNetVal(fx.root, preprocess=PRE, class_subset=[1000])
    with pytest.raises(UsageError, match="limit_per_class=0"):
        ImageNetVal(fx.root, preprocess=PRE, limit_per_class=0)


def test_user_class_map_is_used(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    small = ImageNetClasses(("n02802426", "n01440764", "n01443537"), ("ball", "fish", "goldfish"))
    ds = ImageNetVal(fx.root, preprocess=PRE, classes=small)
    assert ds.class_names == ["ball", "fish", "goldfish"]
    assert sorted(set(ds.labels)) == [0, 1, 2]
    assert ds[0].label == small.index(fx.images[0].wnid)


def test_unknown_wnid_folder_is_a_usage_error(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    (fx.root / "val" / "n99999999").mkdir()
    with pytest.raises(UsageError, match="n99999999"):
        ImageNetVal(fx.root, preprocess=PRE)


def test_corrupt_image_raises_usage_error_naming_the_file(tmp_path):
    fx = make_imagenet_val(tmp_path / "imagenet", defects=False, corrupt_image=True)
    ds = ImageNetVal(fx.root, preprocess=PRE)
    position = [e.key for e in ds.entries].index(fx.corrupt_key)  # indexing does not decode
    ds[0]  # the good ones still load
    with pytest.raises(UsageError, match="corrupt image .*" + Path(fx.corrupt_key).name) as err:
        ds[position]
    assert "\n" not in str(err.value)


def test_not_an_imagenet_root(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        ImageNetVal(tmp_path / "missing", preprocess=PRE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="LOC_val_solution.csv"):
        ImageNetVal(tmp_path / "empty", preprocess=PRE)


def test_malformed_solution_csv(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3\n")
    with pytest.raises(UsageError, match="groups of"):
        ImageNetVal(root, preprocess=PRE)
    (root / "LOC_val_solution.csv").write_text("Id,Boxes\n")
    with pytest.raises(UsageError, match="ImageId,PredictionString"):
        ImageNetVal(root, preprocess=PRE)
