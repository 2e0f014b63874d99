"""run_sharded under torchrun (2 CPU processes, gloo) gives bitwise the single-process result, and resumes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

JOB = Path(__file__).with_name("_dist_job.py")
pytestmark = pytest.mark.slow


def _env(cuda: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _run(args: list[str], torchrun: bool, cuda: bool = False) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"] if torchrun \
        else [sys.executable]
    return subprocess.run(launcher + [str(JOB)] + args, env=_env(cuda), capture_output=True, text=True, timeout=120)


def _calls(result: Path) -> set[int]:
    shards: set[int] = set()
    for file in result.parent.glob(result.name + ".calls-*.json"):
        shards.update(json.loads(file.read_text()))
        file.unlink()
    return shards


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_torchrun_matches_single_process_and_resumes(tmp_path):
    single = _run([str(tmp_path / "single.pt")], torchrun=False)
    assert single.returncode == 0, single.stderr[-3000:]
    reference = _load(tmp_path / "single.pt")
    assert reference["world_size"] == 1 and torch.equal(reference["index"], torch.arange(37))

    two = _run([str(tmp_path / "two.pt")], torchrun=True)
    assert two.returncode == 0, two.stderr[-3000:]
    result = _load(tmp_path / "two.pt")
    assert result["world_size"] == 2
    assert torch.equal(result["index"], reference["index"])
    assert torch.equal(result["logits"], reference["logits"])  # bitwise
    assert _calls(tmp_path / "two.pt") == set(range(8))

    # Shards 0-3 belong to rank 0 and 4-7 to rank 1; rank 1 crashes in shard 5 after saving shard 4.
    shards = tmp_path / "shards-out"
    crashed = _run([str(tmp_path / "resumed.pt"), str(shards), "--crash-at", "5"], torchrun=True)
    assert crashed.returncode != 0 and "simulated crash in shard 5" in crashed.stderr
    assert not (tmp_path / "resumed.pt").exists()
    saved = {int(p.stem) for p in (shards / "shards" / "logits-v1").glob("*.pt")}
    assert 4 in saved and 5 not in saved
    _calls(tmp_path / "resumed.pt")

    resumed = _run([str(tmp_path / "resumed.pt"), str(shards)], torchrun=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _calls(tmp_path / "resumed.pt") == set(range(8)) - saved  # saved shards were not recomputed
    final = _load(tmp_path / "resumed.pt")
    assert torch.equal(final["logits"], reference["logits"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_torchrun_on_cuda_matches_single_process(tmp_path):
    # Both ranks share the GPU(s); objects travel over gloo while NCCL is registered for CUDA tensors.
    single = _run([str(tmp_path / "single.pt"), "--device", "cuda"], torchrun=False, cuda=True)
    assert single.returncode == 0, single.stderr[-3000:]
    two = _run([str(tmp_path / "two.pt"), "--device", "auto"], torchrun=True, cuda=True)
    assert two.returncode == 0, two.stderr[-3000:]
    reference, result = _load(tmp_path / "single.pt"), _load(tmp_path / "two.pt")
    assert result["world_size"] == 2 and result["logits"].device.type == "cpu"
    assert torch.equal(result["logits"], reference["logits"])
