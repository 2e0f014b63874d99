"""What this installation of rtool is made of (behind `rtool info`)."""
from __future__ import annotations

import torch
import torchvision

import rtool
from rtool.engine.paths import cache_dir
from rtool.ops import _library


def device_names() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return names


def environment_report() -> dict[str, str]:
    ops = "loaded" if _library.operators_loaded() else f"NOT loaded ({_library.LOAD_ERROR})"
    if _library.operators_loaded():
        ops += f" ({', '.join(sorted(_registered_ops()))})"
        stale = _library.stale_reason()
        if stale:
            ops += f"; STALE: {stale}, rebuild with `{_library.REBUILD}`"
    return {
        "rtool": rtool.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch CUDA": torch.version.cuda or "none (CPU build)",
        "C++ operators": ops,
        "CUDA kernels": "compiled in" if _library.cuda_compiled() else "not compiled (CPU build)",
        "devices": ", ".join(device_names()),
        "CPU threads": str(torch.get_num_threads()),
        "cache directory": str(cache_dir()),
    }


def _registered_ops() -> list[str]:
    return [name for name in torch._C._dispatch_get_all_op_names() if name.startswith("rtool::")]
