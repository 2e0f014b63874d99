"""Score a whole dataset: saliency per image, RS per image, CRS per class, ranking and flags.

Work is cut into fixed shards of images (rtool.engine.run_sharded): spread over torchrun ranks, written
atomically when an output directory is given, and reused on a rerun, so an interrupted run resumes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import rtool
from rtool.data.sample import collate_samples
from rtool.engine import run_sharded, stable_hash
from rtool.errors import UsageError
from rtool.score.rs import area_fractions, robustness_scores
from rtool.score.results import ImageScores, ScoreResult, class_scores, rank_and_flag
from rtool.score.saliency import saliency_maps

THUMBNAIL_SIZE = 64


@dataclass
class ScoreSettings:
    """Everything that changes the scores (and so the resume key), plus how the work is cut."""

    method: str = "scorecam"
    parity: bool = False
    saliency_options: dict = field(default_factory=dict)  # passed to the saliency method (batch_size, top_k, ...)
    images_per_step: int = 8
    shard_size: int = 64
    threshold: float = 0.3
    bottom_k: int | None = None  # None: 2.5% of the classes, rounded up (25 of ImageNet's 1000)


def default_bottom_k(num_classes: int) -> int:
    return math.ceil(0.025 * num_classes)


def model_fingerprint(model: nn.Module) -> str:
    """Cheap identity of the weights: shapes and two sums per tensor (for the resume key, not security)."""
    parts = []
    for name, tensor in model.state_dict().items():
        t = tensor.detach().double()
        parts.append([name, list(t.shape), round(float(t.sum()), 6), round(float(t.abs().sum()), 6)])
    return stable_hash(parts)


def dataset_fingerprint(dataset) -> str:
    """Identity of the items without decoding them: on-disk datasets list their entries' keys."""
    entries = getattr(dataset, "entries", None)
    keys = [e.key for e in entries] if entries is not None else []
    return stable_hash([type(dataset).__name__, len(dataset), list(dataset.class_names), keys,
                        repr(getattr(dataset, "preprocess", None))])


def top_k_hits(logits: torch.Tensor, labels: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return top[:, 0] == labels, (top == labels[:, None]).any(dim=1), top[:, 0]


def check_labels_fit(logits: torch.Tensor, labels: torch.Tensor, model_name: str, class_names: list[str]) -> None:
    outputs = logits.shape[1]
    worst = int(labels.max()) if labels.numel() else -1
    if worst >= outputs:
        name = class_names[worst] if worst < len(class_names) else str(worst)
        raise UsageError(f"model {model_name} has {outputs} outputs but the dataset needs class index {worst} "
                         f"({name}); expected a model with at least {worst + 1} classes")


def thumbnails(maps: torch.Tensor) -> torch.Tensor:
    """uint8 [B, t, t] copies of the maps (NaN as 0) for the overlays in the report."""
    size = min(THUMBNAIL_SIZE, maps.shape[-1], maps.shape[-2])
    small = F.adaptive_avg_pool2d(torch.nan_to_num(maps.float(), nan=0.0)[:, None], size)[:, 0]
    return (small.clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def score_images(model: nn.Module, layer: nn.Module, samples: list, settings: ScoreSettings,
                 device: torch.device, model_name: str, class_names: list[str]) -> tuple[ImageScores, dict]:
    """RS and accuracy of a few samples (one step), and the saliency method's statistics."""
    batch = collate_samples(samples)
    images = batch.images.to(device)
    labels = batch.labels.to(device)
    with torch.inference_mode():
        logits = model(images)
    check_labels_fit(logits, labels, model_name, class_names)
    top1, top5, pred = top_k_hits(logits, labels)
    result = saliency_maps(model, layer, images, labels, method=settings.method, parity=settings.parity,
                           **settings.saliency_options)
    maps = result.maps
    height, width = maps.shape[-2:]
    return ImageScores(
        keys=batch.keys, label=batch.labels, rs=robustness_scores(maps, batch.boxes).double(),
        top1=top1.cpu(), top5=top5.cpu(), pred=pred.cpu(), area=area_fractions(batch.boxes, height, width).double(),
        nan_map=torch.isnan(maps).any(dim=2).any(dim=1).cpu(), thumbnails=thumbnails(maps),
    ), result.stats


def score_dataset(model: nn.Module, layer: nn.Module, dataset, settings: ScoreSettings, *,
                  device: torch.device, model_name: str = "model", out_dir=None, quiet: bool = False,
                  identity: dict | None = None) -> ScoreResult | None:
    """Score every image of `dataset` (BoxSample items). Returns the result on rank 0, None on other ranks.

    `out_dir`: where per-shard results are kept (resume); None keeps nothing. `identity`: extra facts that
    change the results (model and weights names...) for the resume key.
    """
    if len(dataset) == 0:
        raise UsageError("the dataset has no scorable images"
                         + (f" ({len(dataset.skipped)} skipped: {dataset.skipped[0][1]} ...)" if dataset.skipped else ""))
    model = model.to(device).eval()
    class_names = list(dataset.class_names)

    def compute(start: int, stop: int) -> dict:
        parts, stats_sum = [], {}
        for first in range(start, stop, settings.images_per_step):
            samples = [dataset[i] for i in range(first, min(first + settings.images_per_step, stop))]
            scores, stats = score_images(model, layer, samples, settings, device, model_name, class_names)
            parts.append(scores)
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    stats_sum[key] = stats_sum.get(key, 0.0) + float(value)
        return {"images": ImageScores.concat(parts).to_record(), "stats": stats_sum}

    key = stable_hash({
        "rtool": rtool.__version__, "settings": {k: v for k, v in asdict(settings).items()
                                                 if k not in ("images_per_step", "shard_size", "threshold", "bottom_k")},
        "model": model_fingerprint(model), "data": dataset_fingerprint(dataset), "identity": identity or {},
        "layer": [n for n, m in model.named_modules() if m is layer],
    })
    merged = run_sharded(len(dataset), compute, out_dir=out_dir, job_key=f"score-{key}",
                         shard_size=settings.shard_size, merge=lambda shards: shards, quiet=quiet)
    if merged is None:
        return None
    images = ImageScores.concat([ImageScores.from_record(s["images"]) for s in merged])
    classes = class_scores(images, class_names)
    bottom_k = default_bottom_k(len(classes)) if settings.bottom_k is None else settings.bottom_k
    ranking, flagged = rank_and_flag(classes, settings.threshold, bottom_k)
    stats: dict[str, float] = {}
    for shard in merged:
        for k, v in shard["stats"].items():
            stats[k] = stats.get(k, 0.0) + v
    if stats.get("channels_total"):  # ratios do not add up over steps: recompute from the counts
        stats["skip_fraction"] = 1.0 - stats["channels_evaluated"] / stats["channels_total"]
    return ScoreResult(images=images, classes=classes, ranking=ranking, flagged=flagged,
                       threshold=settings.threshold, bottom_k=bottom_k,
                       config={**asdict(settings), **(identity or {})}, stats=stats,
                       skipped=list(getattr(dataset, "skipped", [])))
