"""Box geometry and S3FD's box coding, written once for NumPy and TensorFlow.

Boxes are in normalised image coordinates: corner form (x1, y1, x2, y2) for faces
and detections, centre-size form (cx, cy, w, h) for priors. Every function takes the
array namespace `xp`: ``numpy`` for the host post-processing (the reference a C version
follows) or ``tensorflow.experimental.numpy`` for the tf.data target encoding, so the
arithmetic is the same in both. Float32 in, float32 out.

Coding (S3FD / SSD, EdgeML's layers/bbox_utils.py), variances v = (v0, v1):
    encode: t_xy = (centre_box - centre_prior) / (v0 * size_prior),  t_wh = log(size_box / size_prior) / v1
    decode: centre = centre_prior + t_xy * v0 * size_prior,          size = size_prior * exp(t_wh * v1)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def to_center_size(corners, xp=np):
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    return xp.concatenate([(corners[..., :2] + corners[..., 2:]) / 2, corners[..., 2:] - corners[..., :2]], axis=-1)


def to_corners(center_size, xp=np):
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    half = center_size[..., 2:] / 2
    return xp.concatenate([center_size[..., :2] - half, center_size[..., :2] + half], axis=-1)


def area(corners, xp=np):
    wh = xp.maximum(corners[..., 2:] - corners[..., :2], 0.0)
    return wh[..., 0] * wh[..., 1]


def iou_matrix(a, b, xp=np):
    """Intersection over union of every box in a [n, 4] with every box in b [m, 4] -> [n, m]
    (corner form; IoU 0 where the union is empty)."""
    lo = xp.maximum(a[:, None, :2], b[None, :, :2])
    hi = xp.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = xp.maximum(hi - lo, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    union = area(a, xp)[:, None] + area(b, xp)[None, :] - inter
    return xp.where(union > 0, inter / xp.maximum(union, 1e-12), 0.0)


def encode(corners, priors, variances: Sequence[float], xp=np):
    """Offsets [..., 4] that `decode` turns back into `corners` ([..., 4], corner form), for
    priors [..., 4] in centre-size form. Boxes must have positive width and height."""
    box = to_center_size(corners, xp)
    centre = (box[..., :2] - priors[..., :2]) / (variances[0] * priors[..., 2:])
    size = xp.log(box[..., 2:] / priors[..., 2:]) / variances[1]
    return xp.concatenate([centre, size], axis=-1)


def decode(offsets, priors, variances: Sequence[float], xp=np, exp=None):
    """Corner-form boxes from predicted offsets [..., 4] and centre-size priors [..., 4].
    `exp` replaces xp.exp (the host post-processing passes its platform-independent exp32)."""
    centre = priors[..., :2] + offsets[..., :2] * variances[0] * priors[..., 2:]
    size = priors[..., 2:] * (exp or xp.exp)(offsets[..., 2:] * variances[1])
    return to_corners(xp.concatenate([centre, size], axis=-1), xp)


__all__ = ["to_center_size", "to_corners", "area", "iou_matrix", "encode", "decode"]
