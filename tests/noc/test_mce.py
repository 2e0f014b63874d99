"""rtool.noc mCE: the CE formulas on hand numbers, presets and reference tables (spec noc.md §2-3), the
measured reference, resumable shards and batch-size independence, ImageNet-C's summed form."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rtool.noc as noc
from rtool.errors import UsageError
from rtool.noc import (IMAGENET_C_ALEXNET, PRESETS, REFERENCE_TABLES, ImageNetCSettings, MceSettings, TensorImages,
                       corruption_error, mean_ce, run_imagenet_c, run_mce, summed_corruption_error)

N_IMAGES, SIZE, CLASSES = 23, 24, 4


class Counting(nn.Module):
    """A small seeded CNN that counts the images it sees (to tell computed shards from resumed ones)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                                 nn.Linear(32, CLASSES))
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return self.net(x)


@pytest.fixture(scope="module")
def source():
    g = torch.Generator().manual_seed(5)
    images = (torch.rand(N_IMAGES, 3, SIZE, SIZE, generator=g) * 255).to(torch.uint8)
    labels = torch.arange(N_IMAGES) % CLASSES
    return TensorImages(images, labels, [f"c{i}" for i in range(CLASSES)], (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


SETTINGS = MceSettings(corruptions=("brightness", "blur", "rain", "hue"), batch_size=5, shard_size=8)


# ------------------------------------------------------------------ formulas, presets, tables (spec §2-3)

def test_relative_and_absolute_ce_on_hand_numbers():
    # E_f(shear) = 0.5, E_f(clean) = 0.3 against alexnet-2020: shear 0.657, clean 0.435 -> 100 * 0.2 / 0.222
    table = REFERENCE_TABLES["alexnet-2020"]
    assert corruption_error(0.5, 0.3, table["shear"], table["none"], "relative") == pytest.approx(90.0900900)
    assert corruption_error(0.5, 0.3, table["shear"], table["none"], "absolute") == pytest.approx(100 * 0.5 / 0.657)
    # The reference itself scores 100, and a model that loses nothing to the corruption scores 0.
    assert corruption_error(0.657, 0.435, 0.657, 0.435) == pytest.approx(100.0)
    assert corruption_error(0.3, 0.3, 0.657, 0.435) == 0.0
    # A reference that did not degrade leaves the relative CE undefined.
    assert math.isnan(corruption_error(0.5, 0.3, 0.4, 0.4))
    assert mean_ce([80.0, math.nan, 100.0]) == 90.0
    with pytest.raises(UsageError, match="CE form"):
        corruption_error(0.5, 0.3, 0.6, 0.4, "ratio")


def test_presets_and_the_spec_denominators():
    assert PRESETS["noc8"] == ("shear", "rain", "hue", "quantization", "brightness", "border", "blur",
                               "vertical_artifacts")
    assert set(PRESETS["noc7-code"]) == {"blur", "rotation", "brightness", "rhombus", "quantization", "obstruction",
                                         "hue"}
    assert MceSettings().names == PRESETS["noc8"] and MceSettings(preset="noc7-code").names == PRESETS["noc7-code"]
    table = REFERENCE_TABLES["alexnet-2020"]
    expected = {"shear": .222, "rain": .313, "hue": .249, "quantization": .157, "brightness": .142, "border": .235,
                "blur": .135, "vertical_artifacts": .323}
    assert {n: round(table[n] - table["none"], 3) for n in PRESETS["noc8"]} == expected
    assert REFERENCE_TABLES["resnet50-2020-draft"]["none"] == 0.239
    for name, values in REFERENCE_TABLES.items():
        assert set(values) == {"none", *noc.CORRUPTIONS}, name


@pytest.mark.parametrize("kwargs, fragment", [
    ({"preset": "noc9"}, "unknown preset 'noc9'"),
    ({"corruptions": ("blur", "fog")}, "unknown corruption 'fog'"),
    ({"corruptions": ("blur", "blur")}, "repeats"),
    ({"reference": "vgg-2020"}, "unknown reference 'vgg-2020'"),
    ({"reference": "measure:"}, "measure:<model>"),
    ({"ce_form": "ratio"}, "CE form"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_settings_are_one_line_errors(kwargs, fragment):
    with pytest.raises(UsageError, match=fragment.replace("(", r"\(")):
        MceSettings(**kwargs)


def test_imagenet_c_table_and_summed_ce():
    # AlexNet's published per-corruption errors (mean over severities); 15 corruptions.
    assert len(IMAGENET_C_ALEXNET) == 15 and IMAGENET_C_ALEXNET["gaussian_noise"] == 0.886428
    assert IMAGENET_C_ALEXNET["jpeg_compression"] == 0.606500
    errors = [0.2, 0.3, 0.4, 0.5, 0.6]
    assert summed_corruption_error(errors, [0.8] * 5) == pytest.approx(100 * 2.0 / 4.0)
    with pytest.raises(UsageError, match="absolute"):
        ImageNetCSettings(ce_form="relative")


# ------------------------------------------------------------------ runs

def test_measured_reference_scores_itself_100(source):
    model = Counting()
    for form in ("relative", "absolute"):
        settings = MceSettings(corruptions=SETTINGS.corruptions, ce_form=form, reference="measure:self",
                               batch_size=5, shard_size=8)
        result = run_mce(model, source, settings, reference_model=model)
        defined = [s for s in result.scores if s.defined]
        assert defined, [s.error for s in result.scores]
        assert all(s.ce == pytest.approx(100.0) for s in defined)
        assert result.reference_clean_error == result.clean_error
    with pytest.raises(UsageError, match="reference model"):
        run_mce(model, source, MceSettings(reference="measure:alexnet"))


@pytest.mark.parametrize("reference", ["alexnet-2020", "resnet50-2020-draft"])
def test_errors_follow_the_hits_and_the_table(source, reference):
    settings = MceSettings(corruptions=SETTINGS.corruptions, reference=reference, batch_size=5, shard_size=8)
    result = run_mce(Counting(), source, settings)
    table = REFERENCE_TABLES[reference]
    assert result.names == SETTINGS.corruptions and result.n_images == N_IMAGES
    assert result.reference == reference and result.reference_clean_error == table["none"]
    assert result.clean_error == pytest.approx(1 - result.hits["none"].double().mean().item())
    for s in result.scores:
        assert s.error == pytest.approx(1 - result.hits[s.name].double().mean().item())
        assert s.reference_error == table[s.name]
        assert s.ce == pytest.approx(corruption_error(s.error, result.clean_error, table[s.name], table["none"]))
    assert result.mce == pytest.approx(sum(s.ce for s in result.scores) / len(result.scores))


def test_shards_resume_and_results_do_not_depend_on_batch_or_shard_size(source, tmp_path):
    model = Counting()
    first = run_mce(model, source, SETTINGS, out_dir=tmp_path)
    conditions = 1 + len(SETTINGS.corruptions)
    assert model.seen == conditions * N_IMAGES
    shards = list((tmp_path / "shards").glob("noc-*/*.pt"))
    assert len(shards) == conditions * math.ceil(N_IMAGES / SETTINGS.shard_size)

    again = run_mce(model, source, SETTINGS, out_dir=tmp_path)
    assert model.seen == conditions * N_IMAGES  # every (condition, shard) was reused
    assert again.scores == first.scores and again.mce == first.mce

    # A different corruption list reuses the clean and shared passes, computing only the new one.
    run_mce(model, source, MceSettings(corruptions=("brightness", "contrast"), batch_size=5, shard_size=8),
            out_dir=tmp_path)
    assert model.seen == (conditions + 1) * N_IMAGES

    other = run_mce(Counting(), source, MceSettings(corruptions=SETTINGS.corruptions, batch_size=3, shard_size=5))
    for key in first.hits:
        assert torch.equal(first.predictions[key], other.predictions[key]), key
    assert other.scores == first.scores


def test_another_seed_or_mode_is_another_job(source, tmp_path):
    model = Counting()
    run_mce(model, source, SETTINGS, out_dir=tmp_path)
    seen = model.seen
    run_mce(model, source, MceSettings(corruptions=SETTINGS.corruptions, seed=1, batch_size=5, shard_size=8),
            out_dir=tmp_path)
    assert model.seen == seen + len(SETTINGS.corruptions) * N_IMAGES  # the clean pass is shared


def test_imagenet_c_runner_sums_over_severities(source):
    model = Counting()
    sources = {(name, s): source for name in ("gaussian_noise", "speckle_noise") for s in range(1, 6)}
    result = run_imagenet_c(model, sources, ImageNetCSettings(batch_size=8, shard_size=8))
    gauss = result.by_name()["gaussian_noise"]
    assert len(gauss.severity_errors) == 5 and gauss.reference_error == 0.886428
    assert gauss.ce == pytest.approx(100 * sum(gauss.severity_errors) / (5 * 0.886428))
    assert result.undefined == ("speckle_noise",)  # no published AlexNet number
    assert result.mce == pytest.approx(gauss.ce)
    measured = run_imagenet_c(model, sources, ImageNetCSettings(reference="measure:self"), reference_model=model)
    assert all(s.ce == pytest.approx(100.0) for s in measured.scores)
    del sources[("speckle_noise", 3)]
    with pytest.raises(UsageError, match="severity 3 missing"):
        run_imagenet_c(model, sources)


def test_decoding_workers_give_the_same_images(tmp_path):
    from fixtures.imagenet_layout import make_imagenet_val
    from rtool.data.imagenet_c import imagenet_val_images
    from rtool.noc import Crop, FileImages

    fx = make_imagenet_val(tmp_path / "imagenet", defects=False)
    files = imagenet_val_images(fx.root)
    assert [f.as_posix() for f in files.paths] == [i.path.as_posix() for i in fx.images]
    assert list(files.labels) == [i.label for i in fx.images]
    source = FileImages(files, Crop(36, 32), (0.5,) * 3, (0.25,) * 3)
    plain = source.batch(0, len(source))
    assert plain.shape == (len(fx.images), 3, 32, 32) and 0 <= plain.min() and plain.max() <= 1
    assert torch.equal(source.batch(1, 5, workers=2), plain[1:5])
