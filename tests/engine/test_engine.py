"""rtool.engine: devices, atomic writes, shard bounds and resumable sharded runs (single process)."""
from __future__ import annotations

import json
import os

import pytest
import torch

from rtool.engine import (
    atomic_path,
    atomic_save_torch,
    atomic_write_json,
    atomic_write_text,
    autocast,
    cache_dir,
    current,
    gather_to_rank0,
    generator,
    progress,
    resolve_device,
    run_sharded,
    seed_everything,
    shard_bounds,
    shard_dir,
    stable_hash,
)
from rtool.errors import UsageError


# ------------------------------------------------------------------------------------------- device

def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu:0", ""])
def test_resolve_device_rejects_unknown(spec):
    with pytest.raises(UsageError, match="expected auto, cpu, cuda or cuda:N"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_resolve_device_cuda_unavailable():
    with pytest.raises(UsageError, match="CUDA is not available"):
        resolve_device("cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_resolve_device_cuda_index_out_of_range():
    with pytest.raises(UsageError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_autocast_none_is_full_precision_and_bf16_lowers():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(2, 8)
    with autocast("cpu", None):
        assert layer(x).dtype == torch.float32
    with autocast("cpu", "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with pytest.raises(UsageError, match="unknown precision 'int3'"):
        with autocast("cpu", "int3"):
            pass


# ------------------------------------------------------------------------------------------- seeding, misc

def test_seed_everything_and_generator_repeat():
    seed_everything(7)
    a = torch.rand(5)
    seed_everything(7)
    assert torch.equal(a, torch.rand(5))
    assert torch.equal(torch.rand(3, generator=generator(3)), torch.rand(3, generator=generator(3)))


def test_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RTOOL_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()


def test_progress_is_silent_when_quiet_or_not_a_tty(capsys):
    assert list(progress(range(3), quiet=True)) == [0, 1, 2]
    assert list(progress(range(3))) == [0, 1, 2]  # pytest's stderr is not a TTY
    assert capsys.readouterr().err == ""


def test_stable_hash_ignores_key_order():
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) != stable_hash({"a": 2})


# ------------------------------------------------------------------------------------------- atomic io

def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if ".tmp" in p.name)


def test_atomic_writers_write_and_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_json(tmp_path / "sub" / "b.json", {"x": 1, "p": tmp_path})
    atomic_save_torch(tmp_path / "c.pt", {"t": torch.arange(3)})
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert json.loads((tmp_path / "sub" / "b.json").read_text()) == {"x": 1, "p": str(tmp_path)}
    assert torch.equal(torch.load(tmp_path / "c.pt", weights_only=True)["t"], torch.arange(3))
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "sub") == []
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_path_keeps_suffix_and_old_file_on_error(tmp_path):
    target = tmp_path / "fig.png"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            assert tmp.suffix == ".png" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and _leftovers(tmp_path) == []


def test_atomic_save_torch_keeps_old_file_when_save_fails(tmp_path):
    target = tmp_path / "r.pt"
    atomic_save_torch(target, {"v": 1})
    with pytest.raises(Exception):
        atomic_save_torch(target, {"v": lambda: 0})  # lambdas cannot be pickled
    assert torch.load(target, weights_only=True) == {"v": 1}
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------- sharding

@pytest.mark.parametrize("n", [0, 1, 5, 37, 100])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shard_bounds_cover_range_exactly(n, world):
    bounds = [shard_bounds(n, rank, world) for rank in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (_, stop), (start, _) in zip(bounds, bounds[1:]):
        assert stop == start
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_bounds_rejects_bad_rank():
    with pytest.raises(ValueError):
        shard_bounds(10, 3, 3)


def test_single_process_context():
    ctx = current()
    assert (ctx.rank, ctx.world_size, ctx.is_distributed) == (0, 1, False)
    assert gather_to_rank0({"a": 1}) == [{"a": 1}]


def _squares(calls, fail_on=None):
    def compute(start, stop):
        calls.append((start, stop))
        if fail_on is not None and len(calls) == fail_on:
            raise RuntimeError("simulated crash")
        return {"idx": torch.arange(start, stop), "sq": torch.arange(start, stop) ** 2}
    return compute


def _cat(results):
    return {key: torch.cat([r[key] for r in results]) for key in ("idx", "sq")}


def test_run_sharded_merges_in_item_order_without_out_dir(tmp_path):
    calls = []
    merged_order = []

    def merge(results):
        merged_order.extend(int(r["idx"][0]) for r in results)
        return _cat(results)

    out = run_sharded(23, _squares(calls), out_dir=None, job_key="sq", shard_size=5, merge=merge, quiet=True)
    assert torch.equal(out["idx"], torch.arange(23)) and torch.equal(out["sq"], torch.arange(23) ** 2)
    assert calls == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    assert merged_order == [0, 5, 10, 15, 20]
    assert list(tmp_path.iterdir()) == []


def test_run_sharded_resumes_after_a_crash(tmp_path):
    calls = []
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_sharded(23, _squares(calls, fail_on=3), out_dir=tmp_path, job_key="job-a", shard_size=5,
                    merge=_cat, quiet=True)
    assert sorted(p.name for p in shard_dir(tmp_path, "job-a").iterdir()) == ["000000.pt", "000001.pt"]

    calls.clear()
    out = run_sharded(23, _squares(calls), out_dir=tmp_path, job_key="job-a", shard_size=5, merge=_cat, quiet=True)
    assert calls == [(10, 15), (15, 20), (20, 23)]  # the first two shards came from disk
    assert torch.equal(out["sq"], torch.arange(23) ** 2)

    calls.clear()
    run_sharded(23, _squares(calls), out_dir=tmp_path, job_key="job-a", shard_size=5, merge=_cat, quiet=True)
    assert calls == []  # everything resumed

    # Another job key never reuses these shards.
    run_sharded(23, _squares(calls), out_dir=tmp_path, job_key="job-b", shard_size=5, merge=_cat, quiet=True)
    assert len(calls) == 5


def test_run_sharded_recomputes_mismatched_or_damaged_shards(tmp_path):
    calls = []
    run_sharded(10, _squares(calls), out_dir=tmp_path, job_key="j", shard_size=5, merge=_cat, quiet=True)
    # Same key, other shard size: shard 0 now means [0, 4), so nothing may be reused blindly.
    calls.clear()
    out = run_sharded(10, _squares(calls), out_dir=tmp_path, job_key="j", shard_size=4, merge=_cat, quiet=True)
    assert calls == [(0, 4), (4, 8), (8, 10)] and torch.equal(out["idx"], torch.arange(10))
    (shard_dir(tmp_path, "j") / "000001.pt").write_bytes(b"garbage")
    calls.clear()
    with pytest.warns(UserWarning, match="recomputing shard"):
        out = run_sharded(10, _squares(calls), out_dir=tmp_path, job_key="j", shard_size=4, merge=_cat, quiet=True)
    assert calls == [(4, 8)] and torch.equal(out["sq"], torch.arange(10) ** 2)


def test_run_sharded_empty_and_bad_arguments(tmp_path):
    assert run_sharded(0, _squares([]), out_dir=None, job_key="e", shard_size=3, merge=len, quiet=True) == 0
    with pytest.raises(ValueError, match="job_key"):
        run_sharded(3, _squares([]), out_dir=tmp_path, job_key="../evil", shard_size=3, merge=len, quiet=True)
    with pytest.raises(ValueError, match="shard_size"):
        run_sharded(3, _squares([]), out_dir=None, job_key="k", shard_size=0, merge=len, quiet=True)
