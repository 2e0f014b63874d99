"""`rtool.corner` under torchrun (2 CPU ranks, gloo): the models of each phase and the dataset shards are split
over the ranks, and the merged results are bitwise the single-process ones."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

JOB = Path(__file__).with_name("_dist_corner.py")
pytestmark = pytest.mark.slow


def _run(result: Path, out: Path, torchrun: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"] if torchrun \
        else [sys.executable]
    return subprocess.run(launcher + [str(JOB), str(result), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)


def test_corner_under_torchrun_equals_one_process(tmp_path, monkeypatch):
    # separate model caches, so the two-rank run trains its own models instead of loading the single run's
    monkeypatch.setenv("RTOOL_CACHE", str(tmp_path / "cache-single"))
    single = _run(tmp_path / "single.pt", tmp_path / "single", torchrun=False)
    assert single.returncode == 0, single.stderr[-3000:]
    monkeypatch.setenv("RTOOL_CACHE", str(tmp_path / "cache-two"))
    two = _run(tmp_path / "two.pt", tmp_path / "two", torchrun=True)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (torch.load(tmp_path / f"{n}.pt", weights_only=True) for n in ("single", "two"))
    assert a["world_size"] == 1 and b["world_size"] == 2
    for key in ("radii", "surprise", "corner", "traces", "radius", "final_label"):
        assert torch.equal(a[key], b[key]), key
    # each rank trained one model of each phase and saved its own shard
    assert len(list((tmp_path / "two" / "shards").glob("corner-original-*/*.pt"))) == 2
    assert len({p.parent.name for p in (tmp_path / "two" / "shards").glob("corner-traces-*/*.pt")}) == 1
