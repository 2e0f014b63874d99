"""A tiny `run_overlap` for tests/noc/test_overlap.py, alone or under torchrun.

usage: python _overlap_dist_job.py RESULT.pt OUT_DIR
Rank 0 saves the merged correct-count matrix and the models trained by each rank to RESULT.pt.
"""
from __future__ import annotations

import sys

import torch

from rtool.engine import atomic_save_torch, cleanup, current
from rtool.noc.overlap import OverlapSettings, run_overlap, shapes_overlap_data

TINY = dict(corruptions=("gaussian", "rotation"), epochs=1, batch_size=16, eval_batch_size=64)


def main() -> None:
    result_path, out_dir = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    train, test = shapes_overlap_data(train_per_class=6, test_per_class=3, image_size=32, seed=0)
    result = run_overlap(train, test, OverlapSettings(**TINY), out_dir=out_dir)
    if current().is_main:
        atomic_save_torch(result_path, {"correct": result.correct, "trained": list(result.trained),
                                        "world_size": current().world_size})
    cleanup()


if __name__ == "__main__":
    main()
