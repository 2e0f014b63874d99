"""`Corrupt`: one corruption as a torchvision.transforms.v2 transform, for a user's own pipeline."""
from __future__ import annotations

import itertools
import threading
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from rtool.noc.corruptions import apply_params, check_mode
from rtool.noc.params import CorruptionParams, check_name, draw_params


class Corrupt(v2.Transform):
    """Apply corruption `name` to float images [3, H, W] or batches [B, 3, H, W] in [0, 1] (uint8 images are
    corrupted in [0, 1] and rounded back to uint8). Labels and other non-image inputs pass through.

    Reproducibility: each image's parameters come from (seed, name, index). Pass `index=` (an int for one
    image, a sequence for a batch) when you know the dataset index, e.g. in a Dataset's __getitem__: then
    the result depends on nothing else. Without it, the transform numbers the images it sees in call
    order (0, 1, 2, ...), which is reproducible in one process but not across DataLoader workers.
    `severity` in [0, 1] fixes the magnitude (see rtool.noc.draw_params). `last_params` holds the
    parameters of the last call, for logging; `apply(x, params)` replays them.
    """

    def __init__(self, name: str, seed: int = 0, mode: str = "pil_exact", severity: float | None = None):
        super().__init__()
        self.name = check_name(name)
        self.seed = int(seed)
        self.mode = check_mode(mode)
        self.severity = severity
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._index: Any = None
        self.last_params: CorruptionParams | None = None

    def __call__(self, *inputs: Any, index: int | list[int] | torch.Tensor | None = None) -> Any:
        self._index = index
        try:
            return super().__call__(*inputs)
        finally:
            self._index = None

    def _next_indices(self, count: int) -> list[int]:
        with self._lock:
            return [next(self._counter) for _ in range(count)]

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, torch.Tensor):  # PIL images: corrupt through a tensor
            return v2.functional.to_pil_image(self.transform(v2.functional.pil_to_tensor(inpt), params))
        single = inpt.dim() == 3
        batch = inpt[None] if single else inpt
        as_uint8 = batch.dtype == torch.uint8
        work = batch.float() / 255 if as_uint8 else batch
        if self._index is None:
            indices = self._next_indices(work.shape[0])
        else:
            indices = [int(self._index)] if single and not isinstance(self._index, (list, tuple, torch.Tensor)) \
                else [int(i) for i in torch.as_tensor(self._index).reshape(-1)]
        drawn = draw_params(self.name, tuple(work.shape[-2:]), indices, seed=self.seed, severity=self.severity)
        self.last_params = drawn
        out = apply_params(work, drawn, self.mode)
        if as_uint8:
            out = (out * 255).round().clamp(0, 255).to(torch.uint8)
        out = out[0] if single else out
        return tv_tensors.wrap(out, like=inpt) if type(inpt) is not torch.Tensor else out

    def apply(self, images: torch.Tensor, params: CorruptionParams) -> torch.Tensor:
        """Replay logged parameters on a batch [B, 3, H, W]."""
        return apply_params(images, params, self.mode)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, seed={self.seed}, mode={self.mode!r}, severity={self.severity}"


class CorruptedDataset(torch.utils.data.Dataset):
    """Wraps a dataset whose items are (image, ...) tuples: item i's image is corrupted with the parameters
    of dataset index i, so the corrupted dataset is the same for any batch size, worker count or shard."""

    def __init__(self, dataset, name: str, seed: int = 0, mode: str = "pil_exact", severity: float | None = None):
        self.dataset = dataset
        self.transform = Corrupt(name, seed=seed, mode=mode, severity=severity)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        image, *rest = self.dataset[index]
        return (self.transform(image, index=index), *rest)
