"""Builds the C++/CUDA operators into `rtool._C`. Metadata lives in pyproject.toml.

CUDA kernels are compiled when a GPU is visible or RTOOL_WITH_CUDA=1; RTOOL_WITH_CUDA=0 forces a CPU-only
build, which never needs nvcc. Build with `pip install --no-build-isolation -e .` so pip uses the torch that
is already installed instead of fetching another.
"""
import glob
import os

from setuptools import find_packages, setup

import torch
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension, CUDA_HOME

ROOT = os.path.dirname(os.path.abspath(__file__))


def sources_fingerprint() -> str:
    """rtool/_sources.py's fingerprint of csrc/, baked into the build (a checkout then tells a stale build)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rtool_sources", os.path.join(ROOT, "rtool", "_sources.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from pathlib import Path

    return module.sources_hash(Path(ROOT) / "csrc")


def want_cuda() -> bool:
    flag = os.environ.get("RTOOL_WITH_CUDA", "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    return torch.cuda.is_available() and CUDA_HOME is not None


def sources(pattern: str) -> list[str]:
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, pattern), recursive=True))


def pip_cuda_include_dirs() -> list[str]:
    """Headers of the nvidia-* wheels a CUDA build of torch brings (cusparse.h, cublas_v2.h, ...), for
    toolkits that ship only the compiler and runtime."""
    import site

    return sorted(d for base in site.getsitepackages() for d in glob.glob(os.path.join(base, "nvidia", "*", "include")))


def extension():
    cpp = [s for s in sources("csrc/**/*.cpp") if "/cuda/" not in s]
    cxx_flags = ["-O3", "-std=c++20", "-DRTOOL_PYTHON_MODULE", f"-DRTOOL_SOURCES_HASH={sources_fingerprint()}"]
    if not want_cuda():
        return CppExtension("rtool._C", cpp, extra_compile_args={"cxx": cxx_flags + ["-fopenmp"]},
                            extra_link_args=["-fopenmp"])
    cuda = sources("csrc/**/cuda/*.cpp") + sources("csrc/**/*.cu")
    return CUDAExtension(
        "rtool._C",
        cpp + cuda,
        include_dirs=pip_cuda_include_dirs(),
        define_macros=[("RTOOL_WITH_CUDA", None)],
        extra_compile_args={"cxx": cxx_flags + ["-fopenmp"], "nvcc": ["-O3", "-std=c++20", "-DRTOOL_WITH_CUDA"]},
        extra_link_args=["-fopenmp"],
    )


def packages() -> list[str]:
    # The click app lives in cli/ but installs as `rtool_cli`, never as a top-level `cli`.
    return (["rtool"] + [f"rtool.{p}" for p in find_packages("rtool")]
            + ["rtool_cli"] + [f"rtool_cli.{p}" for p in find_packages("cli")])


setup(
    packages=packages(),
    package_dir={"rtool": "rtool", "rtool_cli": "cli"},
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
