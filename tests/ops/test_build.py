"""The other two ways rtool's operators are built: nvcc on the .cu files, and CMake against libtorch."""
import glob
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def find_cuda_root() -> Path | None:
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return Path(candidate)
    nvcc = shutil.which("nvcc")
    return Path(nvcc).resolve().parents[1] if nvcc else None


CUDA_ROOT = find_cuda_root()
NVCC = str(CUDA_ROOT / "bin" / "nvcc") if CUDA_ROOT else None


def nvidia_pip_dirs(kind: str) -> list[str]:
    """include/ or lib/ folders of the nvidia-* wheels that a CUDA build of torch brings."""
    found = []
    for base in site.getsitepackages():
        found += glob.glob(os.path.join(base, "nvidia", "*", kind))
    return sorted(found)


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("source", sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("csrc/**/*.cu")))
def test_cuda_kernels_compile(source, tmp_path):
    result = subprocess.run(
        [NVCC, "-std=c++17", "-O3", "-arch=sm_80", "-c", str(ROOT / source), "-o", str(tmp_path / "kernel.o")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("source", sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("csrc/*/cuda/*.cpp")))
def test_cuda_dispatch_compiles(source):
    """The tensor-facing CUDA .cpp files, syntax-checked against torch's and CUDA's headers."""
    from torch.utils.cpp_extension import include_paths

    includes = include_paths() + [str(CUDA_ROOT / "include")] + nvidia_pip_dirs("include")
    result = subprocess.run(
        ["g++", "-std=c++20", "-fsyntax-only", "-DRTOOL_WITH_CUDA", *(f"-I{p}" for p in includes), str(ROOT / source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr


LOAD_AND_CALL = """
import sys, torch
torch.ops.load_library(sys.argv[1])
images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
acts = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[4.0, 4.0], [4.0, 4.0]]]])
masked, ranges = torch.ops.rtool.scorecam_masks(images, acts, "minmax", None, 1e-8)
print(tuple(masked.shape), [round(float(r), 4) for r in ranges], float(masked[1].abs().sum()))
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_cmake_build_loads_with_torch_ops(tmp_path):
    build = tmp_path / "build"
    configure = ["cmake", "-S", str(ROOT), "-B", str(build), f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
    if torch.version.cuda:  # a CUDA build of libtorch asks CMake to find the CUDA toolkit, even for a CPU build
        if CUDA_ROOT is None:
            pytest.skip("libtorch is a CUDA build and no CUDA toolkit is installed")
        configure.append(f"-DCUDA_TOOLKIT_ROOT_DIR={CUDA_ROOT}")
        nvrtc = [p for d in nvidia_pip_dirs("lib") for p in glob.glob(os.path.join(d, "libnvrtc.so*"))]
        if nvrtc:
            configure.append(f"-DCUDA_nvrtc_LIBRARY={nvrtc[0]}")
    for command in (configure, ["cmake", "--build", str(build), "-j2"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (library,) = build.glob("librtool_ops.*")
    # A fresh interpreter that never imports rtool, so the schema comes from the CMake build alone.
    result = subprocess.run([sys.executable, "-c", LOAD_AND_CALL, str(library)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    # image 0: map 0..3 upsampled to 8x8 has range 3; image 1: constant map -> zero mask (minmax)
    assert result.stdout.strip() == "(2, 3, 8, 8) [3.0, 0.0] 0.0"


CUDA_BUILD_CHECK = """
import sys, torch
torch.ops.load_library(sys.argv[1])
assert torch.ops.rtool.cuda_compiled()
masked, ranges = torch.ops.rtool.scorecam_masks(torch.ones(1, 3, 4, 4), torch.ones(1, 1, 2, 2), "parity", None, 1e-8)
print(masked.sum().item())
"""


@pytest.mark.slow
@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
def test_setup_py_cuda_build_links_and_loads(tmp_path):
    """RTOOL_WITH_CUDA=1 builds the whole extension with nvcc, even on a machine without a GPU."""
    env = {**os.environ, "RTOOL_WITH_CUDA": "1", "CUDA_HOME": str(CUDA_ROOT), "MAX_JOBS": "2",
           "TORCH_CUDA_ARCH_LIST": os.environ.get("TORCH_CUDA_ARCH_LIST", "9.0")}
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-lib", str(tmp_path / "lib"),
                            "--build-temp", str(tmp_path / "temp")], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=1200)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (library,) = (tmp_path / "lib" / "rtool").glob("_C*.so")
    result = subprocess.run([sys.executable, "-c", CUDA_BUILD_CHECK, str(library)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) == 48.0  # constant map: parity divides by 1, mask stays 1


def test_stale_build_is_one_line_saying_how_to_rebuild(tmp_path, monkeypatch):
    from rtool.ops import _library

    assert _library.stale_reason() is None  # this checkout's build matches its csrc/
    changed = tmp_path / "csrc"
    changed.mkdir()
    (changed / "rtool.cpp").write_text("// edited since the build\n")
    monkeypatch.setattr(_library, "_CSRC", changed)
    monkeypatch.setattr(_library, "_STALE_CHECKED", [])
    with pytest.raises(_library.OperatorsUnavailable) as error:
        _library.require_operators("scorecam_masks")
    message = str(error.value)
    assert "\n" not in message and "other C++ sources" in message
    assert "pip install --no-build-isolation -e ." in message


def test_missing_operator_is_one_line_saying_how_to_rebuild():
    from rtool.ops import OperatorsUnavailable, require_operators

    with pytest.raises(OperatorsUnavailable, match=r"no operator rtool::not_built_yet .*pip install --no-build-isolation -e \."):
        require_operators("not_built_yet")


MISSING_EXTENSION = """
import sys
sys.modules["rtool._C"] = None  # as if the extension had never been built
import torch
from rtool.errors import UsageError
from rtool.ops import scorecam_masks
try:
    scorecam_masks(torch.ones(1, 3, 4, 4), torch.ones(1, 1, 2, 2))
except UsageError as error:
    print(type(error).__name__, "|", error)
"""


def test_missing_extension_is_a_usage_error_saying_how_to_rebuild():
    result = subprocess.run([sys.executable, "-c", MISSING_EXTENSION], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.strip().split(" | ")
    assert kind == "OperatorsUnavailable"
    assert "not built" in message and "pip install --no-build-isolation -e ." in message
