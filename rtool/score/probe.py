"""The probe of spec §5: hide the object (fill its boxes with the normalisation mean) and see whether the
model still predicts the class. A class whose images are still recognised without the object relies on
context: the flag is confirmed."""
from __future__ import annotations

import torch
from torch import nn

from rtool.data.sample import collate_samples
from rtool.score.rs import box_masks
from rtool.score.results import ScoreResult


def hide_boxes(images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
    """Normalised images with every box union set to 0, i.e. to the normalisation mean colour."""
    inside = box_masks(boxes, images.shape[-2], images.shape[-1]).to(images.device)
    return images.masked_fill(inside[:, None], 0.0)


def probe_classes(model: nn.Module, dataset, result: ScoreResult, class_ids: list[int], *,
                  device: torch.device, batch_size: int = 64) -> dict[int, tuple[float, float]]:
    """{class id: (share still top-1, share still in top-5)} over that class's images with the boxes hidden.

    Fills in `probe_top1`/`probe_top5` of those classes in `result`.
    """
    wanted = set(class_ids)
    indices = [i for i, label in enumerate(_dataset_labels(dataset)) if label in wanted]
    hits: dict[int, list[tuple[bool, bool]]] = {c: [] for c in class_ids}
    model = model.to(device).eval()
    for first in range(0, len(indices), batch_size):
        batch = collate_samples([dataset[i] for i in indices[first:first + batch_size]])
        with torch.inference_mode():
            logits = model(hide_boxes(batch.images.to(device), batch.boxes))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices.cpu()
        for label, row in zip(batch.labels.tolist(), top):
            hits[label].append((bool(row[0] == label), bool((row == label).any())))
    shares = {}
    by_id = result.by_id()
    for cid, outcomes in hits.items():
        if not outcomes:
            continue
        top1 = sum(o[0] for o in outcomes) / len(outcomes)
        top5 = sum(o[1] for o in outcomes) / len(outcomes)
        shares[cid] = (top1, top5)
        by_id[cid].probe_top1, by_id[cid].probe_top5 = top1, top5
    return shares


def _dataset_labels(dataset) -> list[int]:
    """Labels by index without decoding images, where the dataset allows it."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return list(labels)
    return [dataset[i].label for i in range(len(dataset))]
