"""f(u): the classifier's softmax probability of the true class for the view u of a mesh (spec §1, §4),
rendered and classified in batches, differentiable in u through the renderer."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rtool.errors import UsageError
from rtool.models import eval_transform_spec
from rtool.render import Mesh, Renderer
from rtool.semantic.space import FIXED_ELEVATION, azimuth_elevation


@dataclass(frozen=True)
class ViewPreprocess:
    """How a render reaches the model: its side, and mean/std normalisation (None: the raw [0, 1] image)."""

    image_size: int = 224
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.image_size < 8:
            raise UsageError(f"image_size={self.image_size!r}: expected at least 8 pixels")
        if (self.mean is None) != (self.std is None):
            raise UsageError("mean and std go together: give both or neither")

    @classmethod
    def for_model(cls, model_name: str, weights: str | None = None, parity: bool = False) -> "ViewPreprocess":
        """`parity`: the original's raw [0, 1] 224² input for every network (Inception too). Otherwise the
        model's own evaluation statistics at its crop size (the render is already the centred object, so
        it is drawn at the crop size rather than resized and cropped)."""
        if parity:
            return cls(224)
        spec = eval_transform_spec(model_name, weights)
        return cls(spec.crop, tuple(spec.mean), tuple(spec.std))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return images
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        return (images - mean) / std


CPU_GRAD_BATCH = 8  # resnet18, 2 cores, one OIR_W iteration (bench/README.md): 0.81 s at 8, 0.84 s at 4 and 16


class ViewScore:
    """f(u) for one (model, mesh, true class): `score(u)` -> [N] probabilities, `probabilities(u)` -> [N, C].

    u is [N, 1] (azimuth at `fixed_elevation`) or [N, 2] (azimuth, elevation), degrees. Views are rendered and
    classified `batch_size` at a time; when u requires grad, the result carries the graph back to u.
    `grad_batch_size` is how many views a caller that needs df/du (robust_regions' OIR_W) should take through
    forward and backward at once: None picks `batch_size` on CUDA and CPU_GRAD_BATCH on a CPU, where a batch
    of 32 with its saved activations runs slower per view than small ones.
    """

    def __init__(self, model: nn.Module, mesh: Mesh, true_class: int, preprocess: ViewPreprocess = ViewPreprocess(),
                 *, batch_size: int = 32, device: torch.device | str | None = None,
                 fixed_elevation: float = FIXED_ELEVATION, supersample: int = 2, grad_batch_size: int | None = None):
        if batch_size < 1:
            raise UsageError(f"batch_size={batch_size!r}: expected a positive integer")
        if grad_batch_size is not None and grad_batch_size < 1:
            raise UsageError(f"grad_batch_size={grad_batch_size!r}: expected a positive integer")
        if device is None:
            device = next(model.parameters()).device
        if grad_batch_size is None:
            grad_batch_size = batch_size if torch.device(device).type == "cuda" else min(batch_size, CPU_GRAD_BATCH)
        self.model = model.to(device).eval()
        self.mesh = mesh
        self.true_class = int(true_class)
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.grad_batch_size = grad_batch_size
        self.fixed_elevation = fixed_elevation
        self.renderer = Renderer(image_size=preprocess.image_size, supersample=supersample, device=device,
                                 views_per_pass=batch_size)
        classes = self._num_classes()
        if classes is not None and not 0 <= self.true_class < classes:
            raise UsageError(f"class {self.true_class}: expected a class index in 0..{classes - 1} of the model")

    def _num_classes(self) -> int | None:
        with torch.no_grad():
            u = torch.zeros(1, 2, dtype=torch.float64)
            return int(self._logits(u).shape[1])

    def _logits(self, u: torch.Tensor) -> torch.Tensor:
        az, el = azimuth_elevation(u, self.fixed_elevation)
        images = self.renderer.render(self.mesh, az.to(self.renderer.dtype), el.to(self.renderer.dtype))
        return self.model(self.preprocess(images))

    def probabilities(self, u: torch.Tensor) -> torch.Tensor:
        """Softmax over the model's classes [N, C] (float32) for each view."""
        u = u.to(self.renderer.device)
        parts = [torch.softmax(self._logits(u[k:k + self.batch_size]).float(), dim=1)
                 for k in range(0, u.shape[0], self.batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, 1)

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """f(u) [N]: the probability of the true class."""
        return self.probabilities(u)[:, self.true_class]
