"""S3FD-style augmentation of one face-detection example, as TensorFlow ops for a tf.data map.

Input: an RGB image float32 [h, w, 3] in [0, 1] of any size and its faces in pixels, float32
[n, 4] (x1, y1, x2, y2). Output: the model's input, float32 [H, W, C] in [0, 1] (C = 1: monochrome,
0.299 R + 0.587 G + 0.114 B as EdgeML's Face-M4 training), and the faces kept, float32 [m, 4]
normalised (x1, y1, x2, y2). Every random draw is stateless from a per-example seed [2], so a
pipeline is reproducible whatever its parallelism.

The steps (facts from S3FD / PyramidBox and the authors' EdgeML training code, written here for TF):
1. A crop window in image pixels, with integer corners (the box arithmetic below then matches the
   pixels exactly):
   - with probability `anchor_sampling_prob`, data-anchor sampling: pick a face, find the anchor
     scale nearest its size sqrt(w*h), pick a target scale uniformly among the scales up to one
     above it, and zoom so the face measures target * 2^U(-1, 1) pixels at the model's input; the
     window is the model input at that zoom, placed at random with the face inside (or, when the
     window is larger than the image along an axis, with the image inside the window);
   - otherwise a random crop of the model's aspect ratio, U(min_crop_scale, 1) of the largest such
     rectangle in the image, placed at random with one random face fully inside when it can be.
   Window parts outside the image are filled with `fill` (the training mean colour).
2. Faces whose centre lies strictly inside the window are kept, clipped to it; faces smaller than
   `min_face_px` (sqrt of the area at the model's input) are dropped. If no face survives, the
   window becomes the whole image, so an example keeps its faces whenever it has any.
3. Crop and resize (bilinear, antialiased) to the model's input; the aspect ratio is the window's.
4. Horizontal flip with probability `flip_prob`.
5. Photometric jitter, each with probability `jitter_prob`: brightness x(1 +- brightness_delta),
   contrast x(1 +- contrast_delta), and for colour models saturation x(1 +- saturation_delta) and
   hue +- hue_delta (fraction of the hue circle; EdgeML's 18 steps of PIL's 256).
6. Monochrome conversion when the model takes 1 channel.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import tensorflow as tf

from ..core.errors import RNNPoolError

# Anchor scales of S3FD's data-anchor sampling for a 640-pixel input; scaled to the model's input.
_S3FD_ANCHOR_SCALES_640 = (16.0, 32.0, 64.0, 128.0, 256.0, 512.0)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    anchor_sampling_prob: float = 0.5
    # None: S3FD's scales times max(H, W) / 640 (8 ... 256 at QVGA, covering Face-M4's 8-48 anchors).
    anchor_scales: Optional[Tuple[float, ...]] = None
    min_crop_scale: float = 0.3
    flip_prob: float = 0.5
    jitter_prob: float = 0.5
    brightness_delta: float = 0.125
    contrast_delta: float = 0.5
    saturation_delta: float = 0.5
    hue_delta: float = 18.0 / 256.0
    min_face_px: float = 1.0
    fill: Tuple[float, float, float] = (123.0 / 255.0, 117.0 / 255.0, 104.0 / 255.0)

    def __post_init__(self):
        for name in ("anchor_sampling_prob", "flip_prob", "jitter_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise RNNPoolError(f"AugmentConfig.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.min_crop_scale <= 1.0:
            raise RNNPoolError(f"AugmentConfig.min_crop_scale must be in (0, 1], got {self.min_crop_scale}")
        if self.anchor_scales is not None and (
            len(self.anchor_scales) < 1
            or sorted(self.anchor_scales) != list(self.anchor_scales)
            or min(self.anchor_scales) <= 0
        ):
            raise RNNPoolError(f"AugmentConfig.anchor_scales must be positive and increasing, got {self.anchor_scales}")

    def scales_for(self, out_hw: Sequence[int]) -> Tuple[float, ...]:
        if self.anchor_scales is not None:
            return tuple(float(s) for s in self.anchor_scales)
        return tuple(s * max(out_hw) / 640.0 for s in _S3FD_ANCHOR_SCALES_640)


def augment_example(image, boxes_px, out_hw, channels: int, seed, config: AugmentConfig = AugmentConfig()):
    """The augmentation of the module docstring; `seed` an int64/int32 tensor of shape [2]."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    image_hw = tf.cast(tf.shape(image)[:2], tf.float32)
    boxes_px = tf.reshape(tf.cast(boxes_px, tf.float32), [-1, 4])
    has_faces = tf.shape(boxes_px)[0] > 0
    use_anchor = tf.logical_and(has_faces, _uniform(seeds[0]) < config.anchor_sampling_prob)
    window = tf.cond(
        use_anchor,
        lambda: sample_anchor_window(boxes_px, image_hw, out_hw, config.scales_for(out_hw), seeds[1]),
        lambda: sample_crop_window(boxes_px, image_hw, out_hw, config.min_crop_scale, seeds[1]),
    )
    boxes = project_boxes(boxes_px, window, out_hw, config.min_face_px)
    lost_all = tf.logical_and(has_faces, tf.equal(tf.shape(boxes)[0], 0))
    window = tf.where(lost_all, full_window(image_hw), window)
    boxes = tf.cond(lost_all, lambda: project_boxes(boxes_px, window, out_hw, config.min_face_px), lambda: boxes)
    image = crop_to_window(image, window, out_hw, config.fill)
    image, boxes = random_flip(image, boxes, config.flip_prob, seeds[2])
    image = photometric_jitter(image, config, color=channels == 3, seed=seeds[3])
    return to_channels(image, channels), boxes


def resize_example(image, boxes_px, out_hw, channels: int, min_face_px: float = 1.0):
    """No augmentation: the whole image resized to the model's input (validation)."""
    window = full_window(tf.cast(tf.shape(image)[:2], tf.float32))
    boxes = project_boxes(tf.reshape(tf.cast(boxes_px, tf.float32), [-1, 4]), window, out_hw, min_face_px)
    image = crop_to_window(image, window, out_hw, fill=(0.0, 0.0, 0.0))
    return to_channels(image, channels), boxes


def full_window(image_hw):
    return tf.stack([0.0, 0.0, image_hw[1], image_hw[0]])


def _uniform(seed, low=0.0, high=1.0):
    return tf.random.stateless_uniform([], seed=seed, minval=low, maxval=high, dtype=tf.float32)


def _random_index(seed, count):
    return tf.random.stateless_uniform([], seed=seed, minval=0, maxval=tf.maximum(count, 1), dtype=tf.int32)


def _place(face_lo, face_hi, window, size, seed):
    """Offset of a window along one axis: the face inside it (or it inside the face when the face is
    larger); when the window is larger than the image, the image inside the window."""
    lo = tf.minimum(face_hi - window, face_lo)
    hi = tf.maximum(face_hi - window, face_lo)
    lo = tf.where(window >= size, size - window, lo)
    hi = tf.where(window >= size, 0.0, hi)
    return tf.floor(_uniform(seed, 0.0, 1.0) * (hi - lo) + lo)


def _window(x0, y0, width, height):
    width = tf.maximum(tf.round(width), 1.0)
    height = tf.maximum(tf.round(height), 1.0)
    return tf.stack([x0, y0, x0 + width, y0 + height])


def sample_anchor_window(boxes_px, image_hw, out_hw, scales: Sequence[float], seed):
    """Data-anchor sampling (module docstring, step 1). Needs at least one face."""
    seeds = tf.random.experimental.stateless_split(seed, num=5)
    face = tf.gather(boxes_px, _random_index(seeds[0], tf.shape(boxes_px)[0]))
    side = tf.sqrt(tf.maximum((face[2] - face[0]) * (face[3] - face[1]), 1e-6))
    scales = tf.constant(scales, tf.float32)
    nearest = tf.cast(tf.argmin(tf.abs(scales - side)), tf.int32)
    highest = tf.minimum(nearest + 1, tf.size(scales) - 1)
    target = tf.gather(scales, _random_index(seeds[1], highest + 1))
    zoom = target / side * tf.pow(2.0, _uniform(seeds[2], -1.0, 1.0))
    width, height = out_hw[1] / zoom, out_hw[0] / zoom
    x0 = _place(face[0], face[2], tf.round(width), image_hw[1], seeds[3])
    y0 = _place(face[1], face[3], tf.round(height), image_hw[0], seeds[4])
    return _window(x0, y0, width, height)


def sample_crop_window(boxes_px, image_hw, out_hw, min_scale: float, seed):
    """Random crop of the model's aspect ratio (module docstring, step 1)."""
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    aspect = out_hw[1] / out_hw[0]
    base_w = tf.minimum(image_hw[1], image_hw[0] * aspect)
    scale = _uniform(seeds[0], min_scale, 1.0)
    width = tf.maximum(tf.round(scale * base_w), 1.0)
    height = tf.maximum(tf.round(scale * base_w / aspect), 1.0)
    count = tf.shape(boxes_px)[0]
    face = tf.cond(count > 0, lambda: tf.gather(boxes_px, _random_index(seeds[1], count)), lambda: tf.zeros([4]))

    def offset(face_lo, face_hi, window, size, s):
        lo = tf.maximum(0.0, face_hi - window)
        hi = tf.minimum(face_lo, size - window)
        fits = tf.logical_and(count > 0, lo <= hi)
        lo = tf.where(fits, lo, 0.0)
        hi = tf.where(fits, hi, tf.maximum(size - window, 0.0))
        return tf.floor(_uniform(s) * (hi - lo) + lo)

    x0 = offset(face[0], face[2], width, image_hw[1], seeds[2])
    y0 = offset(face[1], face[3], height, image_hw[0], seeds[3])
    return _window(x0, y0, width, height)


def project_boxes(boxes_px, window, out_hw, min_face_px: float):
    """Faces with their centre strictly inside `window`, clipped to it, normalised to [0, 1]; faces
    under `min_face_px` (sqrt of the area in model-input pixels) dropped."""
    x0, y0, x1, y1 = window[0], window[1], window[2], window[3]
    cx = (boxes_px[:, 0] + boxes_px[:, 2]) / 2.0
    cy = (boxes_px[:, 1] + boxes_px[:, 3]) / 2.0
    inside = (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
    scale = tf.stack([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    normalised = tf.clip_by_value((boxes_px - tf.stack([x0, y0, x0, y0])) / scale, 0.0, 1.0)
    area_px = ((normalised[:, 2] - normalised[:, 0]) * out_hw[1]) * ((normalised[:, 3] - normalised[:, 1]) * out_hw[0])
    return tf.boolean_mask(normalised, inside & (area_px > min_face_px * min_face_px))


def crop_to_window(image, window, out_hw, fill):
    """The window's pixels resized to out_hw; parts outside the image are `fill`. The window's
    corners are integers, so the image part is an exact slice; only where the window leaves the
    image is the border rounded to a whole output pixel."""
    out_h, out_w = int(out_hw[0]), int(out_hw[1])
    size = tf.shape(image)[:2]
    height, width = tf.cast(size[0], tf.float32), tf.cast(size[1], tf.float32)
    x0, y0, x1, y1 = window[0], window[1], window[2], window[3]
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    ix0, ix1 = tf.clip_by_value(x0, 0.0, width), tf.clip_by_value(x1, 0.0, width)
    iy0, iy1 = tf.clip_by_value(y0, 0.0, height), tf.clip_by_value(y1, 0.0, height)
    ox0 = tf.cast(tf.clip_by_value(tf.round((ix0 - x0) * sx), 0.0, out_w), tf.int32)
    ox1 = tf.cast(tf.clip_by_value(tf.round((ix1 - x0) * sx), 0.0, out_w), tf.int32)
    oy0 = tf.cast(tf.clip_by_value(tf.round((iy0 - y0) * sy), 0.0, out_h), tf.int32)
    oy1 = tf.cast(tf.clip_by_value(tf.round((iy1 - y0) * sy), 0.0, out_h), tf.int32)
    fill = tf.constant(fill, tf.float32)  # RGB: the crop comes before the channel conversion

    def paste():
        part = image[tf.cast(iy0, tf.int32) : tf.cast(iy1, tf.int32), tf.cast(ix0, tf.int32) : tf.cast(ix1, tf.int32)]
        part = tf.image.resize(part, tf.stack([oy1 - oy0, ox1 - ox0]), method="bilinear", antialias=True)
        return tf.pad(part - fill, [[oy0, out_h - oy1], [ox0, out_w - ox1], [0, 0]]) + fill

    empty = (ox1 <= ox0) | (oy1 <= oy0) | (ix1 <= ix0) | (iy1 <= iy0)
    out = tf.cond(empty, lambda: tf.zeros([out_h, out_w, 3]) + fill, paste)
    return tf.ensure_shape(tf.clip_by_value(out, 0.0, 1.0), [out_h, out_w, 3])


def random_flip(image, boxes, prob: float, seed):
    flip = _uniform(seed) < prob
    flipped = tf.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=1)
    return (tf.where(flip, tf.reverse(image, axis=[1]), image), tf.where(flip, flipped, boxes))


def photometric_jitter(image, config: AugmentConfig, color: bool, seed):
    seeds = tf.random.experimental.stateless_split(seed, num=8)

    def factor(i, delta):
        apply = _uniform(seeds[2 * i]) < config.jitter_prob
        return tf.where(apply, 1.0 + _uniform(seeds[2 * i + 1], -delta, delta), 1.0)

    image = image * factor(0, config.brightness_delta)
    image = tf.image.adjust_contrast(image, factor(1, config.contrast_delta))
    if color:
        image = tf.image.adjust_saturation(tf.clip_by_value(image, 0.0, 1.0), factor(2, config.saturation_delta))
        image = tf.image.adjust_hue(image, factor(3, config.hue_delta) - 1.0)
    return tf.clip_by_value(image, 0.0, 1.0)


def to_channels(image, channels: int):
    if channels == 1:
        return tf.image.rgb_to_grayscale(image)
    if channels == 3:
        return image
    raise RNNPoolError(f"face models take 1 (monochrome) or 3 (RGB) channels, not {channels}")
