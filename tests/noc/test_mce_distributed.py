"""`rtool.noc.run_mce` under torchrun (2 CPU processes, gloo) gives the single-process result."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

JOB = Path(__file__).with_name("_mce_dist_job.py")
pytestmark = pytest.mark.slow


def _torchrun(args: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"]
    return subprocess.run(launcher + [str(JOB)] + args, env=env, capture_output=True, text=True, timeout=120)


def _in_process(args: list[str], monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("_mce_dist_job", JOB)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    monkeypatch.setattr(sys, "argv", [str(JOB), *args])
    job.main()


def test_torchrun_matches_one_process(tmp_path, monkeypatch):
    shards = tmp_path / "shards-out"
    two = _torchrun([str(tmp_path / "two.pt"), str(shards)])
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(list(shards.glob("shards/noc-*/*.pt"))) == 4 * 5  # (clean + 3 corruptions) x 5 shards of 5
    _in_process([str(tmp_path / "one.pt")], monkeypatch)

    two, one = (torch.load(tmp_path / f"{name}.pt", weights_only=True) for name in ("two", "one"))
    assert two["world_size"] == 2 and one["world_size"] == 1
    assert two["mce"] == one["mce"] and two["errors"] == one["errors"] and two["clean"] == one["clean"]
    assert two["predictions"].keys() == one["predictions"].keys()
    for key, value in one["predictions"].items():
        assert torch.equal(two["predictions"][key], value), key
