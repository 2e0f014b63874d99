"""The corner experiment and the sharded dataset passes on tiny data, alone or under torchrun (for test_distributed).

usage: python _dist_corner.py RESULT.pt OUT_DIR
Rank 0 saves the experiment's per-model radii and surprise, the selected corner cases, and the dataset-wide
traces and DeepFool radii of one model to RESULT.pt.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

import rtool.corner
from rtool.corner import CornerSettings, DeepFoolConfig, dataset_radius, dataset_traces
from rtool.engine import atomic_save_torch, cleanup, current
from rtool.models import build_corner_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for fixtures
from fixtures.blobs import blobs  # noqa: E402


def main() -> None:
    result_path, out_dir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    train, test = blobs(12, "train", 0), blobs(4, "test", 1)
    settings = CornerSettings(models=2, corner_cases=3, epochs=1, knn=3, batch_size=8,
                              deepfool=DeepFoolConfig(max_iter=4))
    experiment = rtool.corner.run(train, test, settings, out_dir=out_dir)
    model = build_corner_model(train, seed=7).eval()
    traces = dataset_traces(model, train, ("conv2", "logits"), batch_size=4, device="cpu", out_dir=out_dir,
                            shard_size=8)
    radius = dataset_radius(model, train, DeepFoolConfig(max_iter=4), batch_size=4, device="cpu", out_dir=out_dir,
                            shard_size=8)
    ctx = current()
    if ctx.is_main:
        atomic_save_torch(result_path, {
            "world_size": ctx.world_size,
            "radii": torch.stack([r.radii for r in experiment.original + experiment.retrained]),
            "surprise": torch.stack([r.surprise for r in experiment.original]),
            "corner": experiment.corner.indices,
            "traces": traces.values, "radius": radius.radius, "final_label": radius.final_label,
        })
    else:
        assert experiment is None and traces is None and radius is None
    cleanup()


if __name__ == "__main__":
    main()
