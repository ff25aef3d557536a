"""S3FD prior matching: which prior learns which face (TensorFlow, runs in tf.data).

For one image (EdgeML's match_ssd with the face threshold of its config):
  1. every prior takes the face it overlaps most; it is a positive when that IoU >= 0.35;
  2. every face also takes its own best prior, whatever the IoU (so each face has at least
     one positive; when two faces share a best prior the later face wins, as EdgeML's loop).
Positives get label 1 (face) and the encoded offsets of their face; all other priors get
label 0 (background) and zero offsets. Faces are corner-form (x1, y1, x2, y2) in [0, 1];
padding rows (mask False) and boxes without area never match.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from .boxes import encode, iou_matrix, to_corners

MATCH_IOU = 0.35
BACKGROUND = 0
FACE = 1


def match_priors(boxes, valid, priors, variances: Sequence[float], threshold: float = MATCH_IOU):
    """(offsets [P, 4] float32, labels [P] int32) for faces `boxes` [n, 4] with mask `valid` [n]
    and priors [P, 4] in centre-size form."""
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    priors = tf.convert_to_tensor(priors, tf.float32)
    valid = tf.convert_to_tensor(valid, tf.bool)
    valid &= tf.reduce_all(boxes[:, 2:] > boxes[:, :2], axis=-1)
    # One padding row keeps every reduction below non-empty when an image has no faces.
    boxes = tf.concat([boxes, tf.zeros([1, 4], tf.float32)], axis=0)
    valid = tf.concat([valid, [False]], axis=0)
    prior_corners = to_corners(priors, tnp)

    overlaps = tf.where(valid[:, None], iou_matrix(boxes, prior_corners, tnp), -1.0)  # [n + 1, P]
    best_face = tf.argmax(overlaps, axis=0, output_type=tf.int32)  # [P]
    best_overlap = tf.reduce_max(overlaps, axis=0)

    # Rule 2: each valid face forces its best prior; the highest face index wins a shared prior.
    best_prior = tf.argmax(overlaps, axis=1, output_type=tf.int32)  # [n + 1]
    forced = tf.logical_and(
        tf.one_hot(best_prior, tf.shape(priors)[0], on_value=True, off_value=False), valid[:, None]
    )  # [n + 1, P]
    face_index = tf.range(tf.shape(boxes)[0], dtype=tf.int32)[:, None]
    forcing_face = tf.reduce_max(tf.where(forced, face_index, -1), axis=0)
    is_forced = forcing_face >= 0
    best_face = tf.where(is_forced, forcing_face, best_face)
    best_overlap = tf.where(is_forced, 2.0, best_overlap)

    positive = best_overlap >= threshold
    labels = tf.where(positive, FACE, BACKGROUND)
    matched = tf.where(positive[:, None], tf.gather(boxes, best_face), prior_corners)
    offsets = tf.where(positive[:, None], encode(matched, priors, variances, tnp), 0.0)
    return offsets, tf.cast(labels, tf.int32)


__all__ = ["match_priors", "MATCH_IOU", "BACKGROUND", "FACE"]
