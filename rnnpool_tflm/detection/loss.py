"""S3FD's multibox loss (EdgeML's layers/modules/multibox_loss.py), as sums to be normalised.

For a batch of B images and P priors:
  localisation: smooth L1 (beta 1) between predicted and target offsets, summed over the
      4 offsets of every positive prior;
  confidence: softmax cross-entropy summed over the positives and, per image, the
      3 x (its positives) negatives with the highest background cross-entropy (hard
      negative mining; at most all of the image's negatives; an image without faces
      contributes no negatives, as in EdgeML);
  loss = (localisation + confidence) / N, N = the number of positives (at least 1).

`multibox_sums` returns the two sums and N for the caller to normalise, because under
tf.distribute N must be the count over the *global* batch (see trainer.py): then the
replicas' gradients add up to exactly the single-device gradient.
"""

from __future__ import annotations

import tensorflow as tf

NEG_POS_RATIO = 3


def smooth_l1(x):
    ax = tf.abs(x)
    return tf.where(ax < 1.0, 0.5 * x * x, ax - 0.5)


def _rank_descending(values):
    """Rank of each entry in its row, 0 for the largest; ties ranked by position."""
    order = tf.argsort(values, axis=-1, direction="DESCENDING", stable=True)
    return tf.argsort(order, axis=-1, stable=True)


def hard_negatives(cross_entropy, positive, neg_pos_ratio: int = NEG_POS_RATIO):
    """Mask [B, P] of the mined negatives: per image, the min(ratio x positives, negatives)
    non-positive priors with the largest cross-entropy."""
    mining = tf.where(positive, -float("inf"), tf.stop_gradient(cross_entropy))
    num_pos = tf.reduce_sum(tf.cast(positive, tf.int32), axis=-1, keepdims=True)
    num_neg_available = tf.reduce_sum(tf.cast(~positive, tf.int32), axis=-1, keepdims=True)
    num_neg = tf.minimum(neg_pos_ratio * num_pos, num_neg_available)
    return tf.logical_and(~positive, _rank_descending(mining) < num_neg)


def multibox_sums(loc_true, labels, loc_pred, conf_pred, neg_pos_ratio: int = NEG_POS_RATIO):
    """(localisation sum, confidence sum, number of positives) over a batch, float32 scalars.

    loc_true, loc_pred [B, P, 4]; labels [B, P] int (0 = background); conf_pred [B, P, classes]
    logits (after the max-out background)."""
    labels = tf.cast(labels, tf.int32)
    loc_pred = tf.cast(loc_pred, tf.float32)
    conf_pred = tf.cast(conf_pred, tf.float32)
    positive = labels > 0
    pos_f = tf.cast(positive, tf.float32)
    loc_sum = tf.reduce_sum(tf.reduce_sum(smooth_l1(loc_pred - loc_true), axis=-1) * pos_f)

    cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=conf_pred)
    selected = tf.logical_or(positive, hard_negatives(cross_entropy, positive, neg_pos_ratio))
    conf_sum = tf.reduce_sum(cross_entropy * tf.cast(selected, tf.float32))
    return loc_sum, conf_sum, tf.reduce_sum(pos_f)


def multibox_loss(loc_true, labels, loc_pred, conf_pred, neg_pos_ratio: int = NEG_POS_RATIO):
    """(loss, localisation part, confidence part), each normalised by the batch's positives."""
    loc_sum, conf_sum, num_pos = multibox_sums(loc_true, labels, loc_pred, conf_pred, neg_pos_ratio)
    n = tf.maximum(num_pos, 1.0)
    return (loc_sum + conf_sum) / n, loc_sum / n, conf_sum / n


__all__ = ["multibox_sums", "multibox_loss", "hard_negatives", "smooth_l1", "NEG_POS_RATIO"]
