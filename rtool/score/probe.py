"""The probe of spec §5: hide the object (fill its boxes with the normalisation mean) and see whether the
model still predicts the class. A class whose images are still recognised without the object relies on
context: the flag is confirmed."""
from __future__ import annotations

import torch
from torch import nn

from rtool.data.protocol import dataset_labels
from rtool.data.sample import collate_samples
from rtool.score.rs import box_masks

PROBE_BATCH_SIZE = 64


def hide_boxes(images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
    """Normalised images with every box union set to 0, i.e. to the normalisation mean colour."""
    inside = box_masks(boxes, images.shape[-2], images.shape[-1]).to(images.device)
    return images.masked_fill(inside[:, None], 0.0)


def probe_classes(model: nn.Module, dataset, class_ids: list[int], *, device: torch.device,
                  batch_size: int = PROBE_BATCH_SIZE) -> dict[int, tuple[float, float]]:
    """{class id: (share still top-1, share still in top-5)} over that class's images with the boxes hidden.

    Classes without images in `dataset` are left out.
    """
    wanted = set(class_ids)
    indices = [i for i, label in enumerate(dataset_labels(dataset)) if label in wanted]
    hits: dict[int, list[tuple[bool, bool]]] = {c: [] for c in class_ids}
    model = model.to(device).eval()
    for first in range(0, len(indices), batch_size):
        batch = collate_samples([dataset[i] for i in indices[first:first + batch_size]])
        with torch.inference_mode():
            logits = model(hide_boxes(batch.images.to(device), batch.boxes))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices.cpu()
        for label, row in zip(batch.labels.tolist(), top):
            hits[label].append((bool(row[0] == label), bool((row == label).any())))
    return {cid: (sum(o[0] for o in outcomes) / len(outcomes), sum(o[1] for o in outcomes) / len(outcomes))
            for cid, outcomes in hits.items() if outcomes}
