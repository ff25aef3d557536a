"""tf.data pipelines feeding DetectorTrainer: (image, boxes) elements -> batches of
(image, {"loc": offsets [P, 4], "labels": [P]}).

The source element (what data readers yield, one image at a time, unbatched):
    (image, boxes) or (image, boxes, count), or a dict with "image", "boxes" and optionally "count":
    image  float32 [rows, cols, channels] in [0, 1], or uint8 (divided by 255);
           rows, cols, channels must be the detector's input shape;
    boxes  float32 [n, 4], normalised corner form (x1, y1, x2, y2); n may differ per image;
    count  int, how many leading rows of `boxes` are faces (the rest is padding); all rows when absent.
Boxes without area are ignored by the matching (matching.py).

Targets are encoded per image in the pipeline (S3FD matching against the detector's priors),
so batches have a fixed shape whatever the face counts.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from ..core.errors import RNNPoolError
from .matching import MATCH_IOU, match_priors
from .priors import Priors
from .synthetic import DEFAULT_CONFIG, SyntheticFaceConfig, synthetic_face_image


def _unpack(*element):
    """(image float32 in [0, 1], boxes [n, 4] float32, count int32) from any accepted source element."""
    if len(element) == 1 and isinstance(element[0], dict):
        d = element[0]
        image, boxes, count = d["image"], d["boxes"], d.get("count")
    elif len(element) in (2, 3):
        image, boxes = element[:2]
        count = element[2] if len(element) == 3 else None
    else:
        raise RNNPoolError(
            "dataset elements must be (image, boxes), (image, boxes, count) or a dict with "
            f"'image' and 'boxes'; got {len(element)} components"
        )
    image = tf.cast(image, tf.float32) / 255.0 if image.dtype == tf.uint8 else tf.cast(image, tf.float32)
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    count = tf.shape(boxes)[0] if count is None else tf.cast(count, tf.int32)
    return image, boxes, count


def _check_image_spec(dataset: tf.data.Dataset, image_shape: Sequence[int]) -> None:
    spec = dataset.element_spec
    image_spec = spec["image"] if isinstance(spec, dict) else spec[0]
    shape = image_spec.shape
    if shape.rank is not None and shape.rank != 3:
        raise RNNPoolError(f"dataset images must be [rows, cols, channels], got shape {shape}")
    if shape.rank == 3 and any(d is not None and d != want for d, want in zip(shape, image_shape, strict=True)):
        raise RNNPoolError(f"dataset images are {tuple(shape)} but the detector takes {tuple(image_shape)}")


def flip_horizontally(image, boxes):
    """Mirror an image and its boxes left to right."""
    flipped = tf.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=-1)
    return tf.reverse(image, axis=[1]), flipped


def detection_batches(
    source: tf.data.Dataset,
    priors: Priors,
    batch_size: int,
    *,
    channels: int,
    shuffle: int = 0,
    flip: bool = False,
    seed: int = 0,
    threshold: float = MATCH_IOU,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Encoded, batched training/validation data from a source of (image, boxes) elements.

    shuffle: buffer size (0 = keep the order); flip: random horizontal flips; both
    deterministic for `seed`, different each epoch. drop_remainder keeps every batch full,
    so that tf.distribute gives every replica the same share."""
    if int(batch_size) <= 0:
        raise RNNPoolError(f"batch size must be a positive integer, got {batch_size!r}")
    image_shape = (*priors.image_size, int(channels))
    _check_image_spec(source, image_shape)
    prior_boxes = tf.constant(priors.boxes)
    variances = priors.variances

    ds = source.map(_unpack, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if shuffle:
        ds = ds.shuffle(int(shuffle), seed=seed, reshuffle_each_iteration=True)
    if flip:
        coins = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, coins)).map(
            lambda element, coin: _maybe_flip(element, coin % 2 == 0),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def encode(image, boxes, count):
        image = tf.ensure_shape(image, image_shape)
        valid = tf.range(tf.shape(boxes)[0]) < count
        offsets, labels = match_priors(boxes, valid, prior_boxes, variances, threshold)
        return image, {"loc": offsets, "labels": labels}

    ds = ds.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(int(batch_size), drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _maybe_flip(element, flip):
    image, boxes, count = element
    image, boxes = tf.cond(flip, lambda: flip_horizontally(image, boxes), lambda: (image, boxes))
    return image, boxes, count


def synthetic_source(
    count: int,
    image_shape: Sequence[int],
    seed: int = 0,
    config: SyntheticFaceConfig = DEFAULT_CONFIG,
    max_faces: Optional[int] = None,
    cache: bool = True,
) -> tf.data.Dataset:
    """Synthetic faces as a source dataset of (uint8 image, boxes padded to max_faces, count),
    drawn image by image (index i of set `seed`) and cached in memory after the first pass."""
    shape = tuple(int(v) for v in image_shape)
    pad = int(config.max_faces if max_faces is None else max_faces)

    def draw(index):
        image, boxes = synthetic_face_image(seed, int(index), shape, config)
        padded = np.zeros((max(pad, 1), 4), np.float32)
        padded[: len(boxes)] = boxes[:pad]
        return image, padded, np.int32(min(len(boxes), pad))

    def draw_tf(index):
        image, boxes, n = tf.numpy_function(draw, [index], (tf.uint8, tf.float32, tf.int32), stateful=False)
        return tf.ensure_shape(image, shape), tf.ensure_shape(boxes, (max(pad, 1), 4)), tf.ensure_shape(n, ())

    ds = tf.data.Dataset.range(int(count)).map(draw_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.cache() if cache else ds


__all__ = ["detection_batches", "synthetic_source", "flip_horizontally"]
