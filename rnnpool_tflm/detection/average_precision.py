"""A simple average precision for training and tuning (not the WIDER FACE protocol; that is
detection/evaluation.py).

PASCAL VOC style at one IoU threshold: all detections of all images ranked by score
(ties by image, then by their rank in the image); walking down that list, a detection is
a true positive when its best-overlapping ground-truth face of the same image has
IoU >= iou_threshold and has not been matched before, else a false positive; AP is the
area under the precision envelope (precision made non-increasing) over recall, with
every ground-truth face counted. Boxes in any one coordinate system (normalised here).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import RNNPoolError
from .boxes import iou_matrix


def average_precision(
    detected_boxes: Sequence[np.ndarray],
    detected_scores: Sequence[np.ndarray],
    true_boxes: Sequence[np.ndarray],
    iou_threshold: float = 0.5,
) -> float:
    """AP over a set of images: per image, detections [k, 4] with scores [k], and faces [n, 4]."""
    if not len(detected_boxes) == len(detected_scores) == len(true_boxes):
        raise RNNPoolError(
            f"need detections and faces for the same images: {len(detected_boxes)} box sets, "
            f"{len(detected_scores)} score sets, {len(true_boxes)} face sets"
        )
    total_faces = sum(int(np.asarray(t).reshape(-1, 4).shape[0]) for t in true_boxes)
    if total_faces == 0:
        raise RNNPoolError("average precision needs at least one ground-truth face")
    records = []  # (score, image, rank in image, is true positive)
    for image, (boxes, scores, truth) in enumerate(zip(detected_boxes, detected_scores, true_boxes, strict=True)):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32).reshape(-1)
        truth = np.asarray(truth, np.float32).reshape(-1, 4)
        if boxes.shape[0] != scores.shape[0]:
            raise RNNPoolError(f"image {image}: {boxes.shape[0]} boxes but {scores.shape[0]} scores")
        order = np.lexsort((np.arange(len(scores)), -scores))
        overlaps = iou_matrix(boxes[order], truth) if truth.size and boxes.size else np.zeros((len(order), 0))
        matched = np.zeros(truth.shape[0], bool)
        for rank, position in enumerate(order):
            hit = False
            if overlaps.shape[1]:
                best = int(np.argmax(overlaps[rank]))
                if overlaps[rank, best] >= iou_threshold and not matched[best]:
                    matched[best] = hit = True
            records.append((float(scores[position]), image, rank, hit))
    if not records:
        return 0.0
    records.sort(key=lambda r: (-r[0], r[1], r[2]))
    hits = np.array([r[3] for r in records], np.float64)
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    recall = tp / total_faces
    precision = tp / (tp + fp)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    recall_steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(recall_steps * envelope))


__all__ = ["average_precision"]
