"""Detections from a detector's head outputs on the host, in NumPy: the reference post-processing.

For one image (EdgeML's Detect with its QVGA configuration):
  1. flatten the heads and apply the max-out background (heads.py);
  2. class scores = softmax over the classes (float32: exp(x - max) / sum, summed in class order);
  3. boxes = decode(offsets, priors) (boxes.py), in normalised corner form, not clipped;
  (exp is exp32.exp32, the same on every platform; docs/detection.md specifies every operation)
  4. per class c >= 1: keep priors with score > conf_threshold; order them by score,
     highest first, ties by prior index (lowest first); keep the first nms_top_k;
  5. greedy NMS: walk that order, keep a box unless its IoU with an already kept box of the
     same class is > nms_iou (IoU computed in float32 as boxes.iou_matrix);
  6. all classes' kept boxes, ordered by score then (class, prior index), cut to top_k.
Every step has a fixed order, so the C version (custom_ops/detection, bound in
rnnpool_tflm.runtime.detection_native) reproduces the boxes and scores bit for bit.

int8 head outputs are first dequantized per tensor: real = scale * (q - zero_point).
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

from ..core.errors import RNNPoolError
from .boxes import decode, iou_matrix
from .exp32 import exp32
from .heads import HeadLayout, flatten_heads
from .priors import Priors

CONF_THRESHOLD = 0.05
NMS_IOU = 0.3
NMS_TOP_K = 5000
TOP_K = 750


@dataclasses.dataclass(frozen=True)
class PostprocessConfig:
    conf_threshold: float = CONF_THRESHOLD
    nms_iou: float = NMS_IOU
    nms_top_k: int = NMS_TOP_K
    top_k: int = TOP_K


@dataclasses.dataclass(frozen=True)
class Detections:
    """The detections of one image, best first."""

    boxes: np.ndarray  # [k, 4] float32, normalised (x1, y1, x2, y2)
    scores: np.ndarray  # [k] float32
    labels: np.ndarray  # [k] int32 (1 = face)
    priors: np.ndarray  # [k] int32, the prior each detection came from

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def in_pixels(self, image_size: Sequence[int]) -> np.ndarray:
        """Boxes in pixels of an image of (rows, cols)."""
        rows, cols = image_size
        return self.boxes * np.array([cols, rows, cols, rows], np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, np.float32)
    e = exp32(logits - logits.max(axis=-1, keepdims=True))
    total = e[..., 0]
    for c in range(1, e.shape[-1]):  # in class order, as the C version sums
        total = total + e[..., c]
    return e / total[..., None]


def score_order(scores: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Positions sorting by score (descending), ties by index (ascending)."""
    return np.lexsort((indices, -scores))


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    indices: np.ndarray,
    iou_threshold: float = NMS_IOU,
    top_k: Optional[int] = None,
) -> np.ndarray:
    """Greedy non-maximum suppression; returns the kept positions, best first. A box is
    suppressed when its IoU with a kept box is greater than iou_threshold."""
    order = score_order(scores, indices)
    if top_k is not None:
        order = order[:top_k]
    boxes = np.asarray(boxes, np.float32)
    keep: List[int] = []
    suppressed = np.zeros(len(order), bool)
    for i, position in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(position))
        rest = order[i + 1 :]
        if rest.size:
            suppressed[i + 1 :] |= iou_matrix(boxes[position][None], boxes[rest])[0] > iou_threshold
    return np.asarray(keep, np.int64)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.float32(scale) * (np.asarray(q, np.int32) - np.int32(zero_point)).astype(np.float32)).astype(np.float32)


def detect_from_flat(
    loc: np.ndarray, conf: np.ndarray, priors: Priors, config: PostprocessConfig = PostprocessConfig()
) -> Detections:
    """Detections for one image from loc [P, 4] offsets and conf [P, classes] logits."""
    loc, conf = np.asarray(loc, np.float32), np.asarray(conf, np.float32)
    if loc.shape != (priors.count, 4) or conf.ndim != 2 or conf.shape[0] != priors.count:
        raise RNNPoolError(
            f"expected loc [{priors.count}, 4] and conf [{priors.count}, classes], got {loc.shape} and {conf.shape}"
        )
    scores = softmax(conf)
    boxes = decode(loc, priors.boxes, priors.variances, exp=exp32).astype(np.float32)
    found = []
    for label in range(1, conf.shape[1]):
        candidates = np.flatnonzero(scores[:, label] > config.conf_threshold)
        kept = candidates[
            nms(boxes[candidates], scores[candidates, label], candidates, config.nms_iou, config.nms_top_k)
        ]
        found.append((kept, np.full(kept.shape, label, np.int32), scores[kept, label]))
    index = np.concatenate([f[0] for f in found]).astype(np.int32)
    labels = np.concatenate([f[1] for f in found])
    score = np.concatenate([f[2] for f in found]).astype(np.float32)
    order = np.lexsort((index, labels, -score))[: config.top_k]
    return Detections(boxes[index[order]], score[order], labels[order], index[order])


def detect(
    outputs: Sequence[np.ndarray], layout: HeadLayout, priors: Priors, config: PostprocessConfig = PostprocessConfig()
) -> List[Detections]:
    """Detections per image from the detector's float outputs (loc0, conf0, ...), each [B, rows, cols, ch]."""
    if layout.num_priors != priors.count:
        raise RNNPoolError(f"the heads have {layout.num_priors} cells but there are {priors.count} priors")
    loc, conf = flatten_heads([np.asarray(o, np.float32) for o in outputs], layout)
    return [detect_from_flat(loc[b], conf[b], priors, config) for b in range(loc.shape[0])]


def detect_int8(
    outputs: Sequence[np.ndarray],
    scales: Sequence[float],
    zero_points: Sequence[int],
    layout: HeadLayout,
    priors: Priors,
    config: PostprocessConfig = PostprocessConfig(),
) -> List[Detections]:
    """As `detect`, from int8 outputs with their per-tensor quantization (scale, zero point)."""
    if not len(outputs) == len(scales) == len(zero_points):
        raise RNNPoolError(
            f"need a scale and a zero point per output: {len(outputs)} outputs, "
            f"{len(scales)} scales, {len(zero_points)} zero points"
        )
    real = [dequantize(q, s, z) for q, s, z in zip(outputs, scales, zero_points, strict=True)]
    return detect(real, layout, priors, config)


__all__ = [
    "PostprocessConfig",
    "Detections",
    "softmax",
    "score_order",
    "nms",
    "dequantize",
    "detect",
    "detect_from_flat",
    "detect_int8",
    "CONF_THRESHOLD",
    "NMS_IOU",
    "NMS_TOP_K",
    "TOP_K",
]
