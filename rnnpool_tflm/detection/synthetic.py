"""Built-in synthetic faces: cluttered images with faces of many sizes, counts and poses, and their boxes.

No data files: every image is drawn with NumPy from (seed, index), so any image of a set
can be made alone, in any order, on any machine, and is the same every time.

A face is an elliptical head (shaded by a directional light, sometimes with hair) with
two eyes, eyebrows and a mouth, rolled in the image plane and turned (yaw: the features
shift sideways and the far eye narrows), sometimes partly hidden by an occluder. The
background is a gradient with low-frequency texture, sometimes stripes, and distractors:
plain and spotted ellipses (faces without the face), rectangles and bars. Grey (1 channel,
Face-M4) or colour (3 channels). The box of a face is the bounding box of its head
ellipse, occluded or not (as WIDER FACE annotates), in normalised (x1, y1, x2, y2)
coordinates, inside the image.

`SyntheticFaceConfig` sets the difficulty; the defaults are the recipe the face demo
trains on (see docs/face_detection.md for what they reach).
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError


@dataclasses.dataclass(frozen=True)
class SyntheticFaceConfig:
    min_face: float = 0.07  # face (head) height as a fraction of the image height
    max_face: float = 0.30
    max_faces: int = 5  # faces per image: uniform in [0, max_faces], see empty_fraction
    empty_fraction: float = 0.1  # share of images without any face
    max_roll: float = 20.0  # in-plane rotation, degrees
    max_yaw: float = 0.5  # sideways turn, as a fraction of the half width the features move
    occlusion: float = 0.25  # probability that a face is partly occluded
    max_occluded: float = 0.35  # largest share of the face box an occluder covers
    distractors: Tuple[int, int] = (2, 8)
    noise: float = 0.03  # largest per-pixel Gaussian noise (std, in [0, 1] units)
    min_contrast: float = 0.12  # least difference between a face's skin and the local background

    def __post_init__(self):
        if not 0 < self.min_face <= self.max_face < 1:
            raise RNNPoolError(f"need 0 < min_face <= max_face < 1, got {self.min_face}, {self.max_face}")
        if self.max_faces < 0 or not 0 <= self.empty_fraction <= 1:
            raise RNNPoolError(
                f"need max_faces >= 0 and empty_fraction in [0, 1], got {self.max_faces}, {self.empty_fraction}"
            )
        if not 0 <= self.occlusion <= 1 or not 0 <= self.max_occluded < 1:
            raise RNNPoolError(
                f"need occlusion in [0, 1] and max_occluded in [0, 1), got {self.occlusion}, {self.max_occluded}"
            )


DEFAULT_CONFIG = SyntheticFaceConfig()


def _check_shape(image_shape) -> Tuple[int, int, int]:
    try:
        rows, cols, channels = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise RNNPoolError(f"image_shape must be (rows, cols, channels), got {image_shape!r}") from None
    if rows < 16 or cols < 16 or channels not in (1, 3):
        raise RNNPoolError(f"image_shape must be at least 16x16 with 1 or 3 channels, got {image_shape!r}")
    return rows, cols, channels


# -- colours -----------------------------------------------------------------------------------


def _colour(rng, channels: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """A colour of mean brightness in [lo, hi] (grey for one channel)."""
    level = rng.uniform(lo, hi)
    if channels == 1:
        return np.array([level], np.float32)
    tint = rng.normal(0.0, 0.12, 3)
    return np.clip(level + tint - tint.mean(), 0.0, 1.0).astype(np.float32)


def _skin(rng, channels: int, background: float, min_contrast: float) -> np.ndarray:
    """A skin tone that differs from the local background level by at least min_contrast."""
    for _ in range(8):
        level = rng.uniform(0.25, 0.9)
        if abs(level - background) >= min_contrast:
            break
    else:
        level = background + min_contrast if background < 0.5 else background - min_contrast
    if channels == 1:
        return np.array([level], np.float32)
    warm = np.array([1.12, 0.97, 0.85], np.float32) * rng.uniform(0.9, 1.1, 3)
    return np.clip(level * warm, 0.0, 1.0).astype(np.float32)


# -- painting ----------------------------------------------------------------------------------


def _paint(image: np.ndarray, top: int, left: int, alpha: np.ndarray, colour) -> None:
    """Blends `colour` ([C] or [h, w, C]) into image[top:, left:] with coverage alpha [h, w]."""
    h, w = alpha.shape
    region = image[top : top + h, left : left + w]
    a = alpha[..., None]
    region *= 1.0 - a
    region += a * colour


def _ellipse_alpha(u, v, a: float, b: float) -> np.ndarray:
    """Anti-aliased coverage of the ellipse (u/a)^2 + (v/b)^2 <= 1 (about one pixel of soft edge)."""
    r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return np.clip((1.0 - r) * min(a, b) + 0.5, 0.0, 1.0)


def _local_grid(cx: float, cy: float, half_w: float, half_h: float, rows: int, cols: int, angle: float):
    """The pixel window around (cx, cy) and its pixel centres in the rotated frame (u right, v down)."""
    top, left = max(int(math.floor(cy - half_h)), 0), max(int(math.floor(cx - half_w)), 0)
    bottom, right = min(int(math.ceil(cy + half_h)) + 1, rows), min(int(math.ceil(cx + half_w)) + 1, cols)
    ys = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5 - cy
    xs = np.arange(left, right, dtype=np.float32)[None, :] + 0.5 - cx
    c, s = math.cos(angle), math.sin(angle)
    return top, left, xs * c + ys * s, -xs * s + ys * c


def _rotated_half_extent(a: float, b: float, angle: float) -> Tuple[float, float]:
    c, s = math.cos(angle), math.sin(angle)
    return math.sqrt((a * c) ** 2 + (b * s) ** 2), math.sqrt((a * s) ** 2 + (b * c) ** 2)


def _draw_face(image, rng, cx, cy, a, b, angle, config: SyntheticFaceConfig, background: float) -> None:
    rows, cols, channels = image.shape
    ex, ey = _rotated_half_extent(a, b, angle)
    top, left, u, v = _local_grid(cx, cy, ex, ey, rows, cols, angle)
    un, vn = u / a, v / b
    head = _ellipse_alpha(u, v, a, b)

    skin = _skin(rng, channels, background, config.min_contrast)
    light = rng.uniform(0.0, 0.35)
    phi = rng.uniform(0.0, 2 * math.pi)
    shade = 1.0 + light * (un * math.cos(phi) + vn * math.sin(phi))
    _paint(image, top, left, head, skin * shade[..., None])

    if rng.random() < 0.6:  # hair: a cap over the top of the head
        line = rng.uniform(-0.75, -0.45) + 0.1 * un**2
        hair = head * np.clip((line - vn) * b, 0.0, 1.0)
        _paint(image, top, left, hair, _colour(rng, channels, 0.02, 0.45 if rng.random() < 0.8 else 0.9))

    yaw = rng.uniform(-config.max_yaw, config.max_yaw)
    shift = yaw * 0.35
    feature = _colour(rng, channels, 0.0, 0.18)
    eye_y, eye_dx = rng.uniform(-0.2, -0.05), rng.uniform(0.3, 0.42)
    eye_r = (rng.uniform(0.11, 0.16), rng.uniform(0.06, 0.1))
    for side in (-1.0, 1.0):
        narrow = 1.0 - max(0.0, side * yaw) * 0.8  # the eye on the far side shrinks
        ex0, ey0 = (side * eye_dx + shift) * a, eye_y * b
        eye = _ellipse_alpha(u - ex0, v - ey0, max(eye_r[0] * a * narrow, 0.6), max(eye_r[1] * b, 0.6))
        _paint(image, top, left, eye * head, feature)
        if rng.random() < 0.7:  # eyebrow
            brow = _ellipse_alpha(
                u - ex0, v - ey0 + 0.17 * b, max(eye_r[0] * 1.4 * a * narrow, 0.6), max(0.035 * b, 0.5)
            )
            _paint(image, top, left, brow * head, feature)
    mouth_y = rng.uniform(0.4, 0.55)
    smile = rng.uniform(-0.25, 0.35)
    mouth = _ellipse_alpha(
        u - shift * a,
        v - (mouth_y - smile * (u / a - shift) ** 2) * b,
        rng.uniform(0.22, 0.35) * a,
        max(rng.uniform(0.04, 0.09) * b, 0.6),
    )
    _paint(image, top, left, mouth * head, feature * 1.5 + 0.05)


def _draw_occluder(image, rng, box_px, config: SyntheticFaceConfig) -> None:
    """A rectangle over one side of the face covering at most max_occluded of its box."""
    x1, y1, x2, y2 = box_px
    w, h = x2 - x1, y2 - y1
    share = rng.uniform(0.1, config.max_occluded)
    side = rng.integers(4)
    if side < 2:  # from the bottom or the top
        oh = h * share
        ox1, ox2 = x1 - w * 0.1, x2 + w * 0.1
        oy1, oy2 = (y2 - oh, y2 + h * 0.1) if side == 0 else (y1 - h * 0.1, y1 + oh)
    else:  # from the left or the right
        ow = w * share
        oy1, oy2 = y1 - h * 0.1, y2 + h * 0.1
        ox1, ox2 = (x1 - w * 0.1, x1 + ow) if side == 2 else (x2 - ow, x2 + w * 0.1)
    rows, cols, channels = image.shape
    top, left = max(int(oy1), 0), max(int(ox1), 0)
    bottom, right = min(int(math.ceil(oy2)), rows), min(int(math.ceil(ox2)), cols)
    if bottom > top and right > left:
        _paint(image, top, left, np.ones((bottom - top, right - left), np.float32), _colour(rng, channels))


def _background(rng, rows: int, cols: int, channels: int) -> np.ndarray:
    yy = np.linspace(-0.5, 0.5, rows, dtype=np.float32)[:, None]
    xx = np.linspace(-0.5, 0.5, cols, dtype=np.float32)[None, :]
    base = _colour(rng, channels, 0.15, 0.85)
    slope = rng.normal(0.0, 0.25, 2)
    image = np.broadcast_to(base, (rows, cols, channels)).astype(np.float32)
    image = image + (slope[0] * xx + slope[1] * yy)[..., None]
    # Low-frequency texture: a coarse random grid interpolated bilinearly (separably).
    gr, gc = rng.integers(3, 16), rng.integers(4, 20)
    grid = rng.normal(0.0, rng.uniform(0.03, 0.15), (gr, gc, channels)).astype(np.float32)
    ry = _interpolation_matrix(rows, gr)
    rx = _interpolation_matrix(cols, gc)
    rows_done = (ry @ grid.reshape(gr, gc * channels)).reshape(rows, gc, channels)
    image += (rows_done.transpose(0, 2, 1) @ rx.T).transpose(0, 2, 1)
    if rng.random() < 0.3:  # stripes
        k = rng.uniform(8.0, 40.0)
        theta = rng.uniform(0.0, math.pi)
        stripes = np.sin(k * (xx * math.cos(theta) * cols / rows + yy * math.sin(theta)))
        image += (rng.uniform(0.03, 0.12) * stripes)[..., None]
    return image


def _interpolation_matrix(n: int, m: int) -> np.ndarray:
    """[n, m] weights resampling m grid points linearly onto n pixels."""
    pos = np.linspace(0.0, m - 1, n)
    lo = np.clip(np.floor(pos).astype(int), 0, m - 2) if m > 1 else np.zeros(n, int)
    frac = (pos - lo).astype(np.float32)
    out = np.zeros((n, m), np.float32)
    out[np.arange(n), lo] = 1.0 - frac
    if m > 1:
        out[np.arange(n), lo + 1] += frac
    return out


def _draw_distractor(image, rng) -> None:
    rows, cols, channels = image.shape
    size = rng.uniform(0.04, 0.35) * rows
    cx, cy = rng.uniform(0, cols), rng.uniform(0, rows)
    kind = rng.integers(4)
    if kind < 2:  # an ellipse, plain or with random spots: a head without a face
        a, b = size * rng.uniform(0.3, 0.7), size * rng.uniform(0.3, 0.7)
        angle = rng.uniform(0, math.pi)
        top, left, u, v = _local_grid(cx, cy, *_rotated_half_extent(a, b, angle), rows, cols, angle)
        if u.size == 0:
            return
        blob = _ellipse_alpha(u, v, a, b)
        _paint(image, top, left, blob, _colour(rng, channels))
        if kind == 1:
            for _ in range(rng.integers(1, 4)):
                sx, sy = rng.uniform(-0.6, 0.6) * a, rng.uniform(-0.6, 0.6) * b
                spot = _ellipse_alpha(
                    u - sx, v - sy, max(a * rng.uniform(0.08, 0.25), 0.6), max(b * rng.uniform(0.05, 0.2), 0.6)
                )
                _paint(image, top, left, spot * blob, _colour(rng, channels, 0.0, 0.3))
    else:  # a rectangle or a bar
        w, h = (size, size * rng.uniform(0.3, 1.2)) if kind == 2 else (size * 1.5, max(size * 0.08, 1.5))
        if rng.random() < 0.5:
            w, h = h, w
        top, left = int(max(cy - h / 2, 0)), int(max(cx - w / 2, 0))
        bottom, right = int(min(cy + h / 2, rows)), int(min(cx + w / 2, cols))
        if bottom > top and right > left:
            _paint(image, top, left, np.ones((bottom - top, right - left), np.float32), _colour(rng, channels))


def _place_faces(rng, rows: int, cols: int, count: int, config: SyntheticFaceConfig) -> List[tuple]:
    """Face geometries (cx, cy, a, b, angle) whose boxes lie inside the image and do not overlap."""
    placed, boxes = [], []
    for _ in range(count * 10):
        if len(placed) == count:
            break
        height = math.exp(rng.uniform(math.log(config.min_face), math.log(config.max_face))) * rows
        b = height / 2
        a = b * rng.uniform(0.68, 0.85)
        angle = math.radians(rng.uniform(-config.max_roll, config.max_roll))
        ex, ey = _rotated_half_extent(a, b, angle)
        if 2 * ex >= cols - 2 or 2 * ey >= rows - 2:
            continue
        cx, cy = rng.uniform(ex + 1, cols - ex - 1), rng.uniform(ey + 1, rows - ey - 1)
        box = (cx - ex, cy - ey, cx + ex, cy + ey)
        if any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in boxes):
            continue
        placed.append((cx, cy, a, b, angle))
        boxes.append(box)
    return placed


def synthetic_face_image(
    seed: int, index: int, image_shape: Sequence[int] = (240, 320, 1), config: SyntheticFaceConfig = DEFAULT_CONFIG
) -> Tuple[np.ndarray, np.ndarray]:
    """Image `index` of the set `seed`: (uint8 [rows, cols, channels], boxes float32 [n, 4] normalised
    (x1, y1, x2, y2), in the order the faces were drawn)."""
    rows, cols, channels = _check_shape(image_shape)
    rng = np.random.default_rng((int(seed), int(index)))
    image = _background(rng, rows, cols, channels)
    for _ in range(rng.integers(config.distractors[0], config.distractors[1] + 1)):
        _draw_distractor(image, rng)
    count = 0 if rng.random() < config.empty_fraction else int(rng.integers(1, max(config.max_faces, 1) + 1))
    count = min(count, config.max_faces)
    boxes = []
    for cx, cy, a, b, angle in _place_faces(rng, rows, cols, count, config):
        ex, ey = _rotated_half_extent(a, b, angle)
        local = image[max(int(cy - ey), 0) : int(cy + ey) + 1, max(int(cx - ex), 0) : int(cx + ex) + 1]
        background = float(np.clip(local.mean(), 0.0, 1.0))
        _draw_face(image, rng, cx, cy, a, b, angle, config, background)
        box = (cx - ex, cy - ey, cx + ex, cy + ey)
        if rng.random() < config.occlusion:
            _draw_occluder(image, rng, box, config)
        boxes.append(box)
    image *= 255.0
    image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(255.0 * rng.uniform(0.0, config.noise))
    out = np.clip(image, 0.0, 255.0, out=image).round(out=image).astype(np.uint8)
    scale = np.array([cols, rows, cols, rows], np.float32)
    box_array = np.clip(np.array(boxes, np.float32).reshape(-1, 4) / scale, 0.0, 1.0)
    return out, box_array


def synthetic_faces(
    count: int, image_shape: Sequence[int] = (240, 320, 1), seed: int = 0, config: SyntheticFaceConfig = DEFAULT_CONFIG
) -> Tuple[np.ndarray, List[np.ndarray]]:
    """`count` images (uint8 [count, rows, cols, channels]) and their boxes (a list of [n_i, 4])."""
    if int(count) <= 0:
        raise RNNPoolError(f"count must be a positive integer, got {count!r}")
    rows, cols, channels = _check_shape(image_shape)
    images = np.empty((int(count), rows, cols, channels), np.uint8)
    boxes = []
    for i in range(int(count)):
        images[i], b = synthetic_face_image(seed, i, (rows, cols, channels), config)
        boxes.append(b)
    return images, boxes


__all__ = ["SyntheticFaceConfig", "DEFAULT_CONFIG", "synthetic_face_image", "synthetic_faces"]
