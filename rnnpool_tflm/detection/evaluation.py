"""The WIDER FACE evaluation protocol, computed as the official evaluation (eval_tools' MATLAB code,
and the widely used Python port of it) computes it. docs/wider_face.md states it in words.

- Boxes are (x, y, w, h) in pixels; a box spans x .. x + w and its width is counted as w + 1 (the
  "+1 pixel" convention), for the areas and the intersection alike. IoU >= 0.5 is a hit.
- Scores are min-max normalised over all detections of the dataset (all images together).
- In each image the detections are taken in descending score order (stable: ties keep file order).
  Each one is compared with every face and only its best face (highest IoU, the first on ties)
  matters: best IoU < 0.5, or the best face already taken, makes it a false positive; a best face
  outside the evaluated subset makes it neither true nor false positive; otherwise it takes the face.
- For each of 1000 thresholds t_k = 1 - k/1000 (k = 1..1000) and each image, the detections scoring
  >= t_k count: proposals = those that were not ignored, recalled = faces taken by them. Sums over
  the images give precision = recalled / proposals and recall = recalled / faces in the subset.
- AP is the area under the precision envelope (VOC style: precision made non-increasing from the
  right, summed over the recall steps).
- Faces outside a subset are neither hits nor misses. An image without faces, or without detections,
  is not compared (its detections are not false positives, as in the official code); its faces still
  count as misses.

Two degenerate cases the official code leaves undefined (it divides 0 by 0) are defined here: when all
detection scores are equal they all normalise to 1 (every detection counts at every threshold), and a
threshold with no proposal has precision 0 for the envelope (the official MATLAB `max` skips its NaN,
which gives the same AP); a subset without faces has AP None.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Mapping, Optional

import numpy as np

from ..core.errors import RNNPoolError

IOU_THRESHOLD = 0.5
NUM_THRESHOLDS = 1000


@dataclasses.dataclass(frozen=True)
class SubsetResult:
    """AP of one subset, its face count and its curve (one point per threshold, highest first)."""

    ap: Optional[float]
    faces: int
    precision: np.ndarray
    recall: np.ndarray


def box_overlaps(detections: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """IoU [num_detections, num_faces] of (x, y, w, h) boxes under the +1 pixel convention."""
    d = _corners(detections)
    f = _corners(faces)
    iw = np.minimum(d[:, None, 2], f[None, :, 2]) - np.maximum(d[:, None, 0], f[None, :, 0]) + 1
    ih = np.minimum(d[:, None, 3], f[None, :, 3]) - np.maximum(d[:, None, 1], f[None, :, 1]) + 1
    inter = iw * ih
    d_area = (d[:, 2] - d[:, 0] + 1) * (d[:, 3] - d[:, 1] + 1)
    f_area = (f[:, 2] - f[:, 0] + 1) * (f[:, 3] - f[:, 1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (d_area[:, None] + f_area[None, :] - inter)
    return np.where((iw > 0) & (ih > 0), iou, 0.0)


def _corners(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]], axis=1)


def normalize_scores(predictions: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Copies of the [k, 5] (x, y, w, h, score) arrays with scores min-max normalised over all of them."""
    scores = [p[:, 4] for p in predictions.values() if len(p)]
    if not scores:
        return {name: np.asarray(p, np.float64).reshape(-1, 5).copy() for name, p in predictions.items()}
    low = min(float(s.min()) for s in scores)
    high = max(float(s.max()) for s in scores)
    out = {}
    for name, p in predictions.items():
        p = np.asarray(p, np.float64).reshape(-1, 5).copy()
        p[:, 4] = 1.0 if high == low else (p[:, 4] - low) / (high - low)
        out[name] = p
    return out


def match_image(detections: np.ndarray, faces: np.ndarray, in_subset: np.ndarray, iou_threshold: float = IOU_THRESHOLD):
    """Official per-image matching. `detections` [k, 5] sorted by descending score, `faces` [m, 4],
    `in_subset` bool [m]. Returns (is_proposal bool [k], recalled int [k]): whether detection i counts
    as a proposal, and how many subset faces detections 0..i have taken."""
    overlaps = box_overlaps(detections[:, :4], faces)
    # A detection's best face does not depend on which faces are taken, so the official sequential
    # loop reduces to: a hit on a subset face is a true positive iff it is that face's first hit.
    best = np.argmax(overlaps, axis=1)
    hit = overlaps[np.arange(len(detections)), best] >= iou_threshold
    is_proposal = ~(hit & ~in_subset[best])
    counted = np.flatnonzero(hit & in_subset[best])
    first_hits = counted[np.unique(best[counted], return_index=True)[1]]
    true_positive = np.zeros(len(detections), np.int64)
    true_positive[first_hits] = 1
    return is_proposal, np.cumsum(true_positive)


def thresholds(num: int = NUM_THRESHOLDS) -> np.ndarray:
    """t_k = 1 - k/num for k = 1..num, in the official code's floating-point form."""
    return 1.0 - np.arange(1, num + 1, dtype=np.float64) / num


def image_pr_counts(
    scores: np.ndarray, is_proposal: np.ndarray, recalled: np.ndarray, levels: np.ndarray
) -> np.ndarray:
    """[len(levels), 2] (proposals, recalled) counting the detections with score >= each level;
    `scores` sorted descending."""
    above = np.searchsorted(-scores, -levels, side="right")  # how many scores are >= each level
    proposals = np.concatenate([[0], np.cumsum(is_proposal)])[above]
    hits = np.concatenate([[0], recalled])[above]
    return np.stack([proposals, hits], axis=1).astype(np.float64)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC AP: the area under the precision envelope; NaN precisions are skipped as MATLAB's max does."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def evaluate(
    faces: Mapping[str, np.ndarray],
    predictions: Mapping[str, np.ndarray],
    subsets: Optional[Mapping[str, Mapping[str, np.ndarray]]] = None,
    iou_threshold: float = IOU_THRESHOLD,
    num_thresholds: int = NUM_THRESHOLDS,
) -> Dict[str, SubsetResult]:
    """AP per subset. `faces`: image name -> [m, 4] (x, y, w, h) in annotation order; `predictions`:
    image name -> [k, 5] (x, y, w, h, score), images without an entry have no detections, entries
    for unknown images are ignored; `subsets`: subset name -> image name -> 0-based indices of the
    faces in the subset (images the subset does not list are not evaluated in it). The result always
    has "all" (every face of every image) and one entry per subset."""
    for name, p in predictions.items():
        if np.asarray(p).ndim != 2 or np.asarray(p).shape[1] != 5:
            raise RNNPoolError(
                f"predictions for {name} must be [k, 5] (x, y, w, h, score), got shape {np.asarray(p).shape}"
            )
    normalised = normalize_scores({n: p for n, p in predictions.items() if n in faces})
    ranked = {n: p[np.argsort(-p[:, 4], kind="stable")] for n, p in normalised.items()}
    keep_all = {n: np.arange(len(f)) for n, f in faces.items()}
    plans = {"all": keep_all, **(subsets or {})}
    return {
        subset: _evaluate_subset(faces, ranked, keep, iou_threshold, num_thresholds) for subset, keep in plans.items()
    }


def _evaluate_subset(faces, ranked, keep, iou_threshold, num_thresholds) -> SubsetResult:
    levels = thresholds(num_thresholds)
    counts = np.zeros((num_thresholds, 2))
    total = 0
    for name, indices in keep.items():
        if name not in faces:
            raise RNNPoolError(f"a subset lists image {name}, which has no ground truth")
        boxes = np.asarray(faces[name], np.float64).reshape(-1, 4)
        indices = np.asarray(indices, np.int64).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= len(boxes)):
            raise RNNPoolError(f"subset lists face {int(indices.max()) + 1} of {name}, which has {len(boxes)}")
        total += len(indices)
        detections = ranked.get(name)
        if len(boxes) == 0 or detections is None or len(detections) == 0:
            continue
        in_subset = np.zeros(len(boxes), bool)
        in_subset[indices] = True
        is_proposal, recalled = match_image(detections, boxes, in_subset, iou_threshold)
        counts += image_pr_counts(detections[:, 4], is_proposal, recalled, levels)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = counts[:, 1] / counts[:, 0]
        recall = counts[:, 1] / total if total else np.zeros(num_thresholds)
    ap = average_precision(recall, precision) if total else None
    return SubsetResult(ap=ap, faces=total, precision=precision, recall=recall)
