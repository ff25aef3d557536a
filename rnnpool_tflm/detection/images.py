"""Image files in and out of a detector: read any image Pillow can, make it the model's input
(the validation pipeline's resize and monochrome conversion), draw detections on it as PNG."""

from __future__ import annotations

import dataclasses
import io
import pathlib
from typing import List, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from ..core.files import atomic_write_bytes


@dataclasses.dataclass(frozen=True)
class LoadedImage:
    path: pathlib.Path
    original: np.ndarray  # uint8 [H, W, 3] RGB, as read (orientation from EXIF applied)
    model_input: np.ndarray  # float32 [rows, cols, channels] in [0, 1]
    notes: Tuple[str, ...]  # what was changed to fit the model

    @property
    def size(self) -> Tuple[int, int]:
        """(rows, cols) of the original."""
        return int(self.original.shape[0]), int(self.original.shape[1])


def read_rgb(path) -> Tuple[np.ndarray, List[str]]:
    """uint8 [H, W, 3] RGB of an image file, and notes on its conversion; RNNPoolError naming the
    file when it cannot be read."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = pathlib.Path(path)
    if not path.is_file():
        raise RNNPoolError(f"image {path} does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            im = ImageOps.exif_transpose(im)
            rgb = np.asarray(im.convert("RGB"), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise RNNPoolError(f"cannot read image {path}: {exc}") from None
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise RNNPoolError(f"image {path} is empty")
    notes = [] if mode in ("RGB", "L") else [f"read as RGB from mode {mode}"]
    if mode in ("L", "LA", "I", "I;16", "F", "1"):
        notes.append("grey")
    return rgb, notes


def prepare(rgb: np.ndarray, input_shape: Sequence[int], grey_source: bool = False) -> Tuple[np.ndarray, List[str]]:
    """An RGB image (uint8 or float in [0, 1], [H, W, 3]) as a model input of (rows, cols, channels):
    resized as the validation pipeline does (bilinear, antialiased, whole image: the aspect ratio
    is not kept), then made monochrome (ITU-R 601 weights) for a 1-channel model; a grey source
    (`grey_source`) keeps its level."""
    import tensorflow as tf

    rows, cols, channels = (int(v) for v in input_shape)
    if channels not in (1, 3):
        raise RNNPoolError(f"face models take 1 or 3 channels, this one {channels}")
    image = np.asarray(rgb)
    image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
    notes = []
    if image.shape[:2] != (rows, cols):
        notes.append(f"resized from {image.shape[1]}x{image.shape[0]} to {cols}x{rows}")
        image = tf.clip_by_value(tf.image.resize(image, (rows, cols), method="bilinear", antialias=True), 0.0, 1.0)
    if channels == 1 and grey_source:
        image = np.asarray(image)[..., :1]  # R = G = B already (the weights sum to 0.9999, not 1)
    elif channels == 1:
        notes.append("converted to monochrome")
        image = tf.image.rgb_to_grayscale(image)
    return np.asarray(image, np.float32), notes


def fit_to_model(path, rgb: np.ndarray, read_notes: Sequence[str], input_shape: Sequence[int]) -> LoadedImage:
    """A LoadedImage from read_rgb's result."""
    model_input, notes = prepare(rgb, input_shape, grey_source="grey" in read_notes)
    return LoadedImage(pathlib.Path(path), rgb, model_input, tuple([n for n in read_notes if n != "grey"] + notes))


def load_image(path, input_shape: Sequence[int]) -> LoadedImage:
    return fit_to_model(path, *read_rgb(path), input_shape)


def draw_detections(rgb: np.ndarray, boxes_px: np.ndarray, scores: np.ndarray, colour=(255, 40, 40)):
    """A PIL image: the RGB image with each box (x1, y1, x2, y2 in its pixels) and its score."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.asarray(rgb, np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    width = max(1, round(max(image.size) / 320))
    for (x1, y1, x2, y2), score in zip(
        np.asarray(boxes_px, np.float64).reshape(-1, 4), np.asarray(scores).reshape(-1), strict=True
    ):
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        label = f"{float(score):.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), label)
        ty = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1 + width
        draw.rectangle([x1, ty, x1 + (right - left) + 2, ty + (bottom - top) + 2], fill=colour)
        draw.text((x1 + 1, ty), label, fill=(255, 255, 255))
    return image


def save_png(image, path) -> pathlib.Path:
    """A PIL image written atomically as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


__all__ = ["LoadedImage", "read_rgb", "prepare", "fit_to_model", "load_image", "draw_detections", "save_png"]
