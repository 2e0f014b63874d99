"""`rtool score` at scale: torchrun ranks give the single-process result; a rerun resumes from saved shards."""
import os
import subprocess
import sys

import pytest
import torch

import rtool.score.pipeline as pipeline
from fixtures.imagenet_layout import make_imagenet_val
from rtool.data import ImageNetVal, Preprocess
from rtool.models import build_model, get_layer
from rtool.score import ScoreSettings
from rtool.score import run as score_dataset


@pytest.fixture
def imagenet(tmp_path):
    return make_imagenet_val(tmp_path / "imagenet", per_class=3, defects=False)


def small_model():
    torch.manual_seed(0)
    model = build_model("shapes_cnn", None, num_classes=1000)
    return model, get_layer(model, "block4")


def test_rerun_resumes_from_saved_shards(imagenet, tmp_path, monkeypatch):
    dataset = ImageNetVal(imagenet.root, bbox_dir=imagenet.bbox_dir, preprocess=Preprocess.for_parity(64))
    model, layer = small_model()
    settings = ScoreSettings(images_per_step=2, shard_size=2)
    out = tmp_path / "out"
    first = score_dataset(model, layer, dataset, settings, device=torch.device("cpu"), out_dir=out, quiet=True)
    shards = sorted((out / "shards").rglob("*.pt"))
    assert len(shards) == (len(dataset) + 1) // 2

    scored = []
    real = pipeline.saliency_maps

    def counting(model, layer, images, targets, **kwargs):
        scored.append(images.shape[0])
        return real(model, layer, images, targets, **kwargs)

    monkeypatch.setattr(pipeline, "saliency_maps", counting)
    shards[1].unlink()  # as if the run had died while computing the second shard
    again = score_dataset(model, layer, dataset, settings, device=torch.device("cpu"), out_dir=out, quiet=True)
    assert sum(scored) == 2  # only the lost shard's two images were scored again
    assert again.images.keys == first.images.keys
    assert torch.equal(again.images.rs, first.images.rs)
    assert [c.crs for c in again.classes] == [c.crs for c in first.classes]

    # Different settings never reuse those shards.
    scored.clear()
    score_dataset(model, layer, dataset, ScoreSettings(images_per_step=2, shard_size=2, parity=True),
                  device=torch.device("cpu"), out_dir=out, quiet=True)
    assert sum(scored) == len(dataset)


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(imagenet, tmp_path):
    args = ["--quiet", "--device", "cpu", "--out", "{out}", "score", "--dataset", "imagenet", "--data-dir",
            str(imagenet.root), "--bbox-dir", str(imagenet.bbox_dir), "--model", "shapes_cnn", "--num-classes",
            "1000", "--image-size", "64", "--shard-size", "2", "--images-per-step", "2", "--overlays", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(launcher, out):
        command = launcher + [a.replace("{out}", str(out)) for a in args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return out

    single = run([sys.executable, "-m", "rtool_cli.main"], tmp_path / "single")
    multi = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                 "-m", "rtool_cli.main"], tmp_path / "multi")
    for name in ("classes.csv", "images.csv"):
        assert (multi / name).read_bytes() == (single / name).read_bytes(), name
    # both ranks wrote their own shards
    assert len(list((multi / "shards").rglob("*.pt"))) == (len(imagenet.images) + 1) // 2
