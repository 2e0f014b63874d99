"""Score a whole dataset: saliency per image, RS per image, CRS per class, ranking, flags and the probe.

Work is cut into fixed shards of images (rtool.engine.run_sharded): spread over torchrun ranks, written
atomically when an output directory is given, and reused on a rerun, so an interrupted run resumes.
"""
from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

import rtool
from rtool.data.protocol import dataset_fingerprint, is_multi_label, skipped_items
from rtool.data.sample import collate_samples
from rtool.engine import run_sharded, stable_hash, top_k_hits
from rtool.errors import UsageError
from rtool.models import check_labels_fit, model_fingerprint
from rtool.score.probe import probe_classes
from rtool.score.results import ImageScores, ScoreResult, class_scores, rank_and_flag
from rtool.score.rs import area_fractions, robustness_scores
from rtool.score.saliency import saliency_maps
from rtool.score.settings import NOT_IN_RESUME_KEY, ScoreSettings

THUMBNAIL_SIZE = 64


def thumbnails(maps: torch.Tensor) -> torch.Tensor:
    """uint8 [B, t, t] copies of the maps (NaN as 0) for the overlays in the report."""
    size = min(THUMBNAIL_SIZE, maps.shape[-1], maps.shape[-2])
    small = F.adaptive_avg_pool2d(torch.nan_to_num(maps.float(), nan=0.0)[:, None], size)[:, 0]
    return (small.clamp(0, 1) * 255).round().to(torch.uint8).cpu()


def score_images(model: nn.Module, layer: nn.Module, samples: list, settings: ScoreSettings, options: dict,
                 device: torch.device, model_name: str, class_names: list[str]) -> tuple[ImageScores, dict]:
    """RS and accuracy of a few samples (one step), and the saliency method's statistics."""
    batch = collate_samples(samples)
    images = batch.images.to(device)
    labels = batch.labels.to(device)
    with torch.inference_mode():
        logits = model(images)
    check_labels_fit(logits, labels, model_name, class_names)
    top1, top5, pred = top_k_hits(logits, labels)
    result = saliency_maps(model, layer, images, labels, method=settings.method, parity=settings.parity, **options)
    maps = result.maps
    height, width = maps.shape[-2:]
    return ImageScores(
        keys=batch.keys, label=batch.labels, rs=robustness_scores(maps, batch.boxes).double(),
        top1=top1.cpu(), top5=top5.cpu(), pred=pred.cpu(), area=area_fractions(batch.boxes, height, width).double(),
        nan_map=torch.isnan(maps).any(dim=2).any(dim=1).cpu(), thumbnails=thumbnails(maps),
    ), result.stats


def _sum_stats(parts: list[dict]) -> dict[str, float]:
    total: dict[str, float] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total.get(key, 0.0) + float(value)
    if total.get("channels_total"):  # ratios do not add up over steps: recompute from the counts
        total["skip_fraction"] = 1.0 - total["channels_evaluated"] / total["channels_total"]
    return total


def run(model: nn.Module, layer: nn.Module, dataset, settings: ScoreSettings = ScoreSettings(), *,
        device: torch.device | None = None, model_name: str = "model", out_dir=None, quiet: bool = True,
        identity: dict | None = None, planted=None) -> ScoreResult | None:
    """Score every image of `dataset` (rtool.data.protocol) at `layer` of `model`, rank and flag its classes,
    and probe the classes `settings.probe` names. Returns the result on rank 0, None on other torchrun ranks.

    `device`: default the model's. `out_dir`: where per-shard results are kept (resume); None keeps nothing.
    `identity`: extra facts that change the results (model and weights names...) for the resume key and the
    summary. `planted`: classes known to carry a planted cue (the embedded default), reported beside the ranking.
    """
    if len(dataset) == 0:
        skipped = skipped_items(dataset)
        raise UsageError("the dataset has no scorable images"
                         + (f" ({len(skipped)} skipped: {skipped[0][1]} ...)" if skipped else ""))
    if device is None:
        device = next(model.parameters()).device
    model = model.to(device).eval()
    class_names = list(dataset.class_names)
    options = settings.saliency_options(is_multi_label(dataset))

    def compute(start: int, stop: int) -> dict:
        parts, stats = [], []
        for first in range(start, stop, settings.images_per_step):
            samples = [dataset[i] for i in range(first, min(first + settings.images_per_step, stop))]
            scores, step_stats = score_images(model, layer, samples, settings, options, device, model_name,
                                              class_names)
            parts.append(scores)
            stats.append(step_stats)
        return {"images": ImageScores.concat(parts).to_record(), "stats": _sum_stats(stats)}

    key = stable_hash({
        "rtool": rtool.__version__,
        "settings": {k: v for k, v in asdict(settings).items() if k not in NOT_IN_RESUME_KEY},
        "options": options, "model": model_fingerprint(model), "data": dataset_fingerprint(dataset),
        "identity": identity or {}, "layer": [n for n, m in model.named_modules() if m is layer],
    })
    merged = run_sharded(len(dataset), compute, out_dir=out_dir, job_key=f"score-{key}",
                         shard_size=settings.shard_size, merge=lambda shards: shards, quiet=quiet)
    if merged is None:
        return None
    images = ImageScores.concat([ImageScores.from_record(s["images"]) for s in merged])
    classes = class_scores(images, class_names)
    bottom_k = settings.bottom_k_for(len(classes))
    probes = None
    if settings.probe != "none":
        targets = ([c.id for c in classes] if settings.probe == "all"
                   else rank_and_flag(classes, settings.threshold, bottom_k)[1])
        probes = probe_classes(model, dataset, targets, device=device)
    return ScoreResult.from_classes(
        images, classes, threshold=settings.threshold, bottom_k=bottom_k, probes=probes, planted=planted,
        config={**asdict(settings), "saliency_options": options, **(identity or {})},
        stats=_sum_stats([s["stats"] for s in merged]), skipped=skipped_items(dataset))
