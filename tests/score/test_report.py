"""The result writers of `rtool score`: CSVs in the authors' format, summary statistics, figures, the HTML
report, and atomic writing."""
from __future__ import annotations

import csv
import io
import json
import math
import pathlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from PIL import Image

import rtool.engine.io as engine_io
from rtool.data import ShapesConfig, ShapesDataset, channel_stats, generate_shapes, load_imagenet_classes
from rtool.errors import UsageError
from dataclasses import replace

from rtool.data import key_index as dataset_key_index
from rtool.report.score import (classes_csv_text, crs_statistics, format_lowest_table, score_summary,
                                write_classes_csv, write_overlays, write_score_outputs)
from rtool.score.results import ClassScore, ImageScores, ScoreResult

AUTHORS_CSV = Path("/work/shared/data/robustness_score/ImageNet__ResNet_152__ScoreCAM.csv")
needs_authors_csv = pytest.mark.skipif(not AUTHORS_CSV.is_file(), reason="the authors' CSVs are not in shared/")


# --- builders ---------------------------------------------------------------------------------------------

def result_from_images(labels, rs, top5, class_names, *, top1=None, area=None, keys=None, thumbnails=None,
                       threshold=0.3, bottom_k=1, planted=None, skipped=()) -> ScoreResult:
    n = len(labels)
    labels_t = torch.tensor(labels, dtype=torch.int64)
    top5_t = torch.tensor(top5, dtype=torch.bool)
    images = ImageScores(
        keys=keys or [f"img/{i:03d}" for i in range(n)], label=labels_t,
        rs=torch.tensor(rs, dtype=torch.float64), top1=torch.tensor(top1, dtype=torch.bool) if top1 else top5_t,
        top5=top5_t, pred=torch.where(top5_t, labels_t, (labels_t + 1) % len(class_names)),
        area=torch.tensor(area or [0.25] * n, dtype=torch.float64), nan_map=torch.zeros(n, dtype=torch.bool),
        thumbnails=thumbnails,
    )
    return ScoreResult.build(images, class_names, threshold=threshold, bottom_k=bottom_k,
                             config={"method": "scorecam", "parity": False, "model": "toy"},
                             stats={"masked_passes": 12.0}, skipped=list(skipped), planted=planted)


def hand_made() -> ScoreResult:
    """4 classes, 2 images each. CRS 0.1, 0.2, 0.6, 0.9; top-5 acc 1.0, 0.5, 1.0, 0.5."""
    return result_from_images(
        labels=[0, 0, 1, 1, 2, 2, 3, 3], rs=[0.1, 0.1, 0.2, 0.2, 0.5, 0.7, 0.9, 0.9],
        top5=[1, 1, 1, 0, 1, 1, 1, 0], class_names=["ball", "bar; pole", "dog", "shop"],
        area=[0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.5, 0.5], planted=[0, 1],
        skipped=[("img/bad.jpg", "no annotation file")])


def authors_rows() -> list[list[str]]:
    text = AUTHORS_CSV.read_bytes().decode("ascii")
    return [line.split(";") for line in text.split("\r\n")[1:] if line]


def result_from_authors_csv(names: list[str]) -> ScoreResult:
    classes = [ClassScore(id=int(r[0]), name=names[int(r[0])], n=50, acc=float(r[1]), top1=float(r[1]),
                          crs=float(r[2]), crs_std=0.0, area=0.5, size_adjusted=float(r[2]) / 0.5, nan_maps=0)
               for r in authors_rows()]
    return ScoreResult.from_classes(ImageScores.empty(), classes, threshold=0.3, bottom_k=25)


@pytest.fixture(scope="module")
def shapes_scored():
    """A tiny shapes val split and a ScoreResult over it (RS made up, thumbnails: a bright square top-left)."""
    config = ShapesConfig(n_train_per_class=2, n_val_per_class=3)
    mean, std = channel_stats(generate_shapes(config, "train"))
    dataset = ShapesDataset(generate_shapes(config, "val"), mean, std)
    n = len(dataset)
    labels = dataset.labels
    rs = [round(0.05 + 0.09 * label + 0.01 * (i % 3), 4) for i, label in enumerate(labels)]
    thumbs = torch.zeros(n, 16, 16, dtype=torch.uint8)
    thumbs[:, :8, :8] = 255
    result = result_from_images(labels, rs, [1] * n, dataset.class_names, keys=[dataset[i].key for i in range(n)],
                                thumbnails=thumbs, bottom_k=3, planted=[0, 1, 2])
    return dataset, result


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href"):
                self.targets.append(value)


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def parse_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8"), newline=""), delimiter=";"))


# --- classes.csv in the authors' format -------------------------------------------------------------------

@needs_authors_csv
def test_authors_csv_round_trips_byte_identical(tmp_path):
    authors_names = [r[3] for r in authors_rows()]
    result = result_from_authors_csv(authors_names)
    path = write_classes_csv(result, tmp_path / "a.csv", extra_columns=False)
    assert path.read_bytes() == AUTHORS_CSV.read_bytes()

    # The ImageNet caller's way: readable labels as class names, the authors' spelling passed for the CSV.
    classes = load_imagenet_classes()
    result = result_from_authors_csv(list(classes.labels))
    written = write_score_outputs(result, tmp_path / "out", class_csv_names=classes.csv_names(),
                                  csv_file_name=AUTHORS_CSV.name, extra_columns=False)
    assert written["classes_csv"].name == AUTHORS_CSV.name
    assert written["classes_csv"].read_bytes() == AUTHORS_CSV.read_bytes()


@needs_authors_csv
def test_extra_columns_follow_the_authors_four(tmp_path):
    result = result_from_authors_csv([r[3] for r in authors_rows()])
    ours = classes_csv_text(result).split("\r\n")
    theirs = AUTHORS_CSV.read_bytes().decode("ascii").split("\r\n")
    assert len(ours) == len(theirs) and ours[-1] == ""
    assert ours[0] == ("id;acc;crs;name;top1;n;crs_std;area;size_adjusted;nan_maps;rank;flagged;"
                       "probe_top1;probe_top5")
    for mine, reference in zip(ours[1:-1], theirs[1:-1]):
        assert mine.split(";")[:4] == reference.split(";")
    basketball = next(line for line in ours if line.startswith("430;")).split(";")
    assert basketball[10:12] == ["1", "1"]  # rank 1, flagged


@needs_authors_csv
def test_summary_reproduces_the_spec_table_from_the_authors_csv(tmp_path):
    result = result_from_authors_csv([r[3] for r in authors_rows()])
    summary = score_summary(result)
    s = summary["statistics"]
    # Spec §7, ResNet-152 + Score-CAM (4 decimals)
    assert s["mean_crs"] == pytest.approx(0.6747, abs=5e-5)
    assert s["median_crs"] == pytest.approx(0.7062, abs=5e-5)
    assert s["p10_crs"] == pytest.approx(0.4689, abs=5e-5)
    assert s["p90_crs"] == pytest.approx(0.8351, abs=5e-5)
    assert (s["n_crs_below_0.3"], s["n_crs_below_0.5"]) == (31, 126)
    assert s["mean_top5_acc"] == pytest.approx(0.9349, abs=5e-5)
    assert len(summary["accurate_non_robust"]["classes"]) == 20  # spec §5
    assert [row["id"] for row in summary["lowest"][:5]] == [430, 722, 890, 715, 810]
    assert len(summary["lowest"]) == 31 and summary["flagged"] == [row["id"] for row in summary["lowest"]]


def test_classes_csv_parses_back_to_the_same_numbers(tmp_path):
    result = hand_made().with_probes({1: (0.5, 1.0)})
    written = write_score_outputs(result, tmp_path)
    rows = parse_csv(written["classes_csv"])
    assert [int(r["id"]) for r in rows] == [0, 1, 2, 3]
    for row, c in zip(rows, sorted(result.classes, key=lambda c: c.id)):
        assert row["name"] == c.name
        for column in ("acc", "crs", "top1", "crs_std", "area", "size_adjusted"):
            assert float(row[column]) == pytest.approx(getattr(c, column), abs=5e-5)
        assert int(row["n"]) == c.n == 2
        assert int(row["rank"]) == result.ranking.index(c.id) + 1
        assert row["flagged"] == ("1" if c.id in result.flagged else "0")
    assert rows[1]["name"] == "bar; pole"  # quoted, so the separator inside a name survives
    assert (rows[1]["probe_top1"], rows[1]["probe_top5"]) == ("0.5000", "1.0000")
    assert rows[0]["probe_top1"] == rows[0]["probe_top5"] == ""


def test_images_csv_has_one_row_per_image(tmp_path):
    result = hand_made()
    rows = parse_csv(write_score_outputs(result, tmp_path)["images_csv"])
    assert list(rows[0]) == ["key", "label", "name", "rs", "top1", "top5", "pred", "area", "nan_map"]
    assert [r["key"] for r in rows] == result.images.keys
    assert [float(r["rs"]) for r in rows] == pytest.approx(result.images.rs.tolist())
    assert [r["top5"] for r in rows] == ["1", "1", "1", "0", "1", "1", "1", "0"]
    assert rows[3]["pred"] == "2" and rows[3]["name"] == "bar; pole"


def test_class_csv_names_are_used_when_given(tmp_path):
    result = hand_made()
    text = classes_csv_text(result, ["a_a", "b__b", "c", "d"], extra_columns=False)
    assert text.split("\r\n")[1:3] == ["0;1.0000;0.1000;a_a", "1;0.5000;0.2000;b__b"]
    with pytest.raises(UsageError, match=r"class_csv_names has no name for class id 3 \(shop\)"):
        classes_csv_text(result, ["a", "b", "c"])


# --- summary.json -----------------------------------------------------------------------------------------

def test_summary_statistics_on_a_hand_made_example(tmp_path):
    written = write_score_outputs(hand_made(), tmp_path)
    summary = json.loads(written["summary_json"].read_text())
    s = summary["statistics"]
    assert s["mean_crs"] == pytest.approx(0.45)
    assert s["median_crs"] == pytest.approx(0.4)     # (0.2 + 0.6) / 2
    assert s["p10_crs"] == pytest.approx(0.1)        # sorted value at rank ceil(0.1 * 4) = 1
    assert s["p90_crs"] == pytest.approx(0.9)        # rank ceil(0.9 * 4) = 4
    assert (s["n_crs_below_0.3"], s["n_crs_below_0.5"], s["n_crs_below_threshold"]) == (2, 2, 2)
    assert s["mean_top5_acc"] == pytest.approx(0.75)
    assert summary["counts"] == {"images": 8, "classes": 4, "flagged": 2, "skipped": 1}
    assert summary["skipped"] == [{"key": "img/bad.jpg", "reason": "no annotation file"}]
    assert summary["flagged"] == [0, 1]
    assert [c["id"] for c in summary["accurate_non_robust"]["classes"]] == [0]  # class 1 is not accurate
    assert summary["planted"] == {"classes": [0, 1], "ranked_lowest": True, "ranks": {"0": 1, "1": 2}}
    assert [r["id"] for r in summary["lowest"]] == [0, 1, 2, 3]
    assert summary["lowest"][0]["size_adjusted"] == pytest.approx(1.0)
    assert summary["config"]["model"] == "toy" and summary["stats"] == {"masked_passes": 12.0}
    assert set(summary["files"]) == {"classes.csv", "images.csv", "crs.png", "summary.json", "report.html"}
    assert all((tmp_path / f).is_file() for f in summary["files"])


def test_summary_reports_planted_classes_not_ranked_lowest_and_nan_as_null():
    result = hand_made()
    result = replace(result, planted=[0, 3],
                     classes=[replace(c, size_adjusted=math.nan) if c.id == 2 else c for c in result.classes])
    summary = score_summary(result)
    assert summary["planted"]["ranked_lowest"] is False
    assert summary["lowest"][2]["size_adjusted"] is None
    json.dumps(summary, allow_nan=False)  # strict JSON


def test_crs_statistics_of_nothing_is_empty():
    assert crs_statistics([], [])["mean_crs"] is None


# --- stdout table -----------------------------------------------------------------------------------------

def test_format_lowest_table():
    result = hand_made().with_probes({0: (0.5, 1.0)})
    lines = format_lowest_table(result, n=3).splitlines()
    assert len(lines) == 4
    assert lines[0].split() == ["rank", "id", "name", "CRS", "acc", "flagged", "probe", "t1/t5"]
    assert lines[1].split() == ["1", "0", "ball", "0.1000", "1.00", "yes", "0.50/1.00"]
    assert lines[2].split() == ["2", "1", "bar;", "pole", "0.2000", "0.50", "yes", "-"]
    assert lines[3].split()[:2] == ["3", "2"] and "no" in lines[3].split()


# --- figures and the page ---------------------------------------------------------------------------------

def assert_png(path: Path, min_side: int = 100) -> None:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side


def test_overlays_chart_and_report(tmp_path, shapes_scored):
    dataset, result = shapes_scored
    result = result.with_probes({0: (1.0, 1.0)})
    written = write_score_outputs(result, tmp_path, dataset=dataset, overlay_classes=2, overlays_per_class=2)
    assert_png(written["crs_png"])
    overlays = sorted((tmp_path / "overlays").iterdir())
    assert [p.name for p in overlays] == ["01_circle.png", "02_square.png"]
    assert [written["overlay_01"], written["overlay_02"]] == overlays
    for path in overlays:
        assert_png(path)

    page = written["report_html"].read_text()
    parser = Links()
    parser.feed(page)
    assert {"crs.png", "overlays/01_circle.png", "overlays/02_square.png", "classes.csv", "images.csv",
            "summary.json"} <= set(parser.targets)
    for target in parser.targets:
        assert not Path(target).is_absolute() and (tmp_path / target).is_file(), target
    assert "probe top-1" in page and "share of the map" in page and "size-adjusted" in page
    assert "CRS tracks box size" in page
    summary = json.loads(written["summary_json"].read_text())
    assert "overlays/01_circle.png" in summary["files"]


def test_overlays_show_the_lowest_rs_images_of_the_lowest_classes(tmp_path, shapes_scored):
    dataset, result = shapes_scored
    overlays = write_overlays(result, dataset, tmp_path, classes=1, per_class=2)
    assert len(overlays) == 1 and overlays[0].class_id == result.ranking[0]
    rows = (result.images.label == result.ranking[0]).nonzero().flatten()
    lowest = sorted(rows.tolist(), key=lambda r: float(result.images.rs[r]))[:2]
    assert overlays[0].keys == [result.images.keys[r] for r in lowest]


def test_no_dataset_no_overlays_and_stale_ones_removed(tmp_path, shapes_scored):
    dataset, result = shapes_scored
    write_score_outputs(result, tmp_path, dataset=dataset, overlay_classes=2, overlays_per_class=1)
    keep = tmp_path / "overlays" / "notes.txt"
    keep.write_text("mine")
    written = write_score_outputs(result, tmp_path)
    assert not any(k.startswith("overlay_") for k in written)
    assert [p.name for p in (tmp_path / "overlays").iterdir()] == ["notes.txt"]
    assert "No overlays" in written["report_html"].read_text()


@needs_authors_csv
def test_chart_of_a_thousand_classes(tmp_path):
    result = result_from_authors_csv([r[3] for r in authors_rows()])
    written = write_score_outputs(result, tmp_path, overlay_classes=0)
    assert_png(written["crs_png"], min_side=400)
    page = written["report_html"].read_text()
    assert page.count('<tr class="flagged">') == 31


def test_dataset_key_index(shapes_scored):
    dataset, _ = shapes_scored
    index = dataset_key_index(dataset)
    assert len(index) == len(dataset)
    assert all(dataset[i].key == key for key, i in list(index.items())[::7])

    class Listed:  # no entries, not shapes: scanned until the wanted keys are found
        def __init__(self):
            self.reads = 0

        def __len__(self):
            return len(dataset)

        def __getitem__(self, i):
            self.reads += 1
            return dataset[i]

    listed = Listed()
    wanted = {dataset[3].key}
    assert dataset_key_index(listed, wanted) == {dataset[i].key: i for i in range(4)}
    assert listed.reads == 4


# --- bad input ----------------------------------------------------------------------------------------------

def test_bad_options_are_usage_errors(tmp_path):
    result = hand_made()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="output directory .*file is a file; expected a directory"):
        write_score_outputs(result, tmp_path / "file")
    with pytest.raises(UsageError, match=r"csv_file_name '../x.csv': expected a plain file name ending in .csv"):
        write_score_outputs(result, tmp_path, csv_file_name="../x.csv")
    with pytest.raises(UsageError, match=r"overlay_classes=-1: expected a non-negative integer"):
        write_score_outputs(result, tmp_path, overlay_classes=-1)
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]


# --- atomic writing -----------------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def changed(result: ScoreResult) -> ScoreResult:
    return replace(result, classes=[replace(c, crs=1.0 - c.crs) for c in result.classes],
                   ranking=result.ranking[::-1])


def test_crash_while_writing_a_file_keeps_the_previous_one(tmp_path, monkeypatch):
    write_score_outputs(hand_made(), tmp_path)
    before = snapshot(tmp_path)
    real_write_bytes = pathlib.Path.write_bytes

    def half_then_crash(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(pathlib.Path, "write_bytes", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        write_score_outputs(changed(hand_made()), tmp_path)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert temp_files(tmp_path) == []


def test_crash_while_saving_a_figure_keeps_the_previous_one(tmp_path, monkeypatch, shapes_scored):
    dataset, result = shapes_scored
    write_score_outputs(result, tmp_path, dataset=dataset, overlay_classes=1, overlays_per_class=1)
    before = snapshot(tmp_path)

    def partial_png(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
        raise RuntimeError("killed while saving")

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", partial_png)
    with pytest.raises(RuntimeError, match="killed while saving"):
        write_score_outputs(changed(hand_made()), tmp_path, dataset=dataset)
    monkeypatch.undo()
    after = snapshot(tmp_path)
    assert after["crs.png"] == before["crs.png"]
    assert after["overlays/01_circle.png"] == before["overlays/01_circle.png"]
    assert after["summary.json"] == before["summary.json"] and after["report.html"] == before["report.html"]
    assert after["classes.csv"] != before["classes.csv"]  # written completely before the crash
    assert temp_files(tmp_path) == []


def test_crash_before_the_rename_keeps_the_previous_file(tmp_path, monkeypatch):
    write_score_outputs(hand_made(), tmp_path)
    before = snapshot(tmp_path)

    def no_sync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(engine_io.os, "fsync", no_sync)
    with pytest.raises(OSError, match="I/O error"):
        write_score_outputs(changed(hand_made()), tmp_path)
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert temp_files(tmp_path) == []
    assert not any(re.match(r"^\.", p.name) for p in tmp_path.rglob("*"))
