"""Score-CAM masked inputs: the Python face of torch.ops.rtool.scorecam_masks."""
from __future__ import annotations

import torch

from rtool.ops._library import operators_loaded, require_operators

MASK_MODES = ("parity", "minmax")


def scorecam_masks(
    images: torch.Tensor,
    activations: torch.Tensor,
    mode: str = "parity",
    channels: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked copies of `images`, one per (image, channel) row, and the range of each row's mask.

    images [B, Cin, H, W]; activations [B, C, h, w] taken from a layer for those images. Each map is
    upsampled bilinearly (align_corners=False) to H x W as U, then normalised:
      - ``parity``: U of ReLU(A), divided by its range max-min (by 1 when the range is 0), no min shift
        (the authors' Score-CAM);
      - ``minmax``: (U - min) / (max - min + eps).
    `channels` picks the rows: None = every channel of every image (row b*C + k); a 1-D int64 [K] =
    those channels of every image (row b*K + j); a 2-D int64 [N, 2] = explicit (image, channel) pairs.
    A map whose range is at most 1e-6 of its magnitude is constant up to resampling round-off and counts
    as range 0 (parity then divides by 1, minmax gives a zero mask).
    Returns masked [rows, Cin, H, W] (images' dtype; channels_last when images are) and ranges [rows]
    (float32, max - min of U before any eps or substitution).

    Not differentiable: Score-CAM runs it under inference mode; a backward through it raises.
    """
    require_operators("scorecam_masks")
    return torch.ops.rtool.scorecam_masks(images, activations, mode, channels, eps)


def _row_count(images: torch.Tensor, activations: torch.Tensor, channels: torch.Tensor | None):
    if channels is None:
        return images.shape[0] * activations.shape[1]
    if channels.dim() == 1:
        return images.shape[0] * channels.shape[0]
    return channels.shape[0]


if operators_loaded():

    @torch.library.register_fake("rtool::scorecam_masks")
    def _scorecam_masks_fake(images, activations, mode="parity", channels=None, eps=1e-8):
        torch._check(images.dim() == 4, lambda: f"images must be 4-D, got {images.dim()}-D")
        torch._check(activations.dim() == 4, lambda: f"activations must be 4-D, got {activations.dim()}-D")
        torch._check(images.shape[0] == activations.shape[0], lambda: "images and activations batch differ")
        rows = _row_count(images, activations, channels)
        channels_last = (not images.is_contiguous()) and images.is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        masked = images.new_empty((rows, *images.shape[1:])).contiguous(memory_format=layout)
        ranges = images.new_empty((rows,), dtype=torch.float32)
        return masked, ranges

    def _scorecam_masks_setup(ctx, inputs, output) -> None:
        pass

    def _scorecam_masks_backward(ctx, grad_masked, grad_ranges):
        raise RuntimeError("rtool::scorecam_masks is not differentiable (Score-CAM only forwards its masked "
                           "images); detach its inputs or run it under torch.inference_mode()")

    torch.library.register_autograd("rtool::scorecam_masks", _scorecam_masks_backward,
                                    setup_context=_scorecam_masks_setup)
