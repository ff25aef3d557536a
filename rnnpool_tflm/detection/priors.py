"""S3FD priors (default boxes): one square anchor per cell of every head's feature map.

As EdgeML's PriorBox: the prior of cell (i, j) of a head with stride s and anchor size a,
for an image of W x H pixels, is centred at ((j + 0.5) s / W, (i + 0.5) s / H) and is
a / W wide and a / H high (normalised centre-size form), no clipping. Priors are listed
head by head, each head's cells row-major, which is the order of the flattened NHWC
head maps (see heads.py).

The feature map sizes come from the model's actual head shapes, so any input size
works. A head's stride is the power of two nearest to image size / map size (the
zoo's detectors downsample by 2 and 4 only; a "same" convolution gives ceil(n / 2)),
and must agree between rows and columns.

The configurations (EdgeML's data/config_qvga.py and data/config.py):
  Face-M4 (320x240 monochrome): anchors 8, 16, 32, 48 px on maps of stride 8, 8, 16, 16.
  Face-Quant (640x480 RGB): anchors 16, 32, 64, 128, 256, 512 px on maps of stride 4 ... 128.
Both use variances (0.1, 0.2).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError


@dataclasses.dataclass(frozen=True)
class PriorConfig:
    """Anchor sizes in input pixels, one per head, and the box-coding variances."""

    anchor_sizes: Tuple[float, ...]
    variances: Tuple[float, float] = (0.1, 0.2)
    clip: bool = False

    def __post_init__(self):
        if not self.anchor_sizes or any(not (a > 0) for a in self.anchor_sizes):
            raise RNNPoolError(f"anchor sizes must be positive numbers, got {self.anchor_sizes!r}")
        if len(self.variances) != 2 or any(not (v > 0) for v in self.variances):
            raise RNNPoolError(f"variances must be two positive numbers, got {self.variances!r}")


FACE_M4_PRIORS = PriorConfig(anchor_sizes=(8.0, 16.0, 32.0, 48.0))
FACE_QUANT_PRIORS = PriorConfig(anchor_sizes=(16.0, 32.0, 64.0, 128.0, 256.0, 512.0))


@dataclasses.dataclass(frozen=True)
class Priors:
    """The priors of one detector at one input size."""

    boxes: np.ndarray  # [P, 4] float32 (cx, cy, w, h), normalised
    image_size: Tuple[int, int]  # (rows, cols) of the input image
    feature_maps: Tuple[Tuple[int, int], ...]
    strides: Tuple[int, ...]
    config: PriorConfig

    @property
    def count(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def variances(self) -> Tuple[float, float]:
        return self.config.variances

    def head_slices(self) -> Tuple[slice, ...]:
        """Where each head's priors lie in `boxes`."""
        out, start = [], 0
        for rows, cols in self.feature_maps:
            out.append(slice(start, start + rows * cols))
            start += rows * cols
        return tuple(out)


def head_stride(image_size: Sequence[int], feature_map: Sequence[int]) -> int:
    """The downsampling factor between the image and a head's feature map (a power of two)."""
    strides = []
    for n_image, n_map in zip(image_size, feature_map, strict=True):
        if n_map <= 0 or n_map > n_image:
            raise RNNPoolError(f"feature map {tuple(feature_map)} does not fit image {tuple(image_size)}")
        strides.append(2 ** round(math.log2(n_image / n_map)))
    if strides[0] != strides[1]:
        raise RNNPoolError(
            f"feature map {tuple(feature_map)} of image {tuple(image_size)} has different row "
            f"and column strides ({strides[0]} and {strides[1]})"
        )
    return strides[0]


def make_priors(image_size: Sequence[int], feature_maps: Sequence[Sequence[int]], config: PriorConfig) -> Priors:
    """The priors for an image of image_size = (rows, cols) and heads with these (rows, cols) maps."""
    rows_img, cols_img = (int(v) for v in image_size)
    maps = tuple((int(r), int(c)) for r, c in feature_maps)
    if len(maps) != len(config.anchor_sizes):
        raise RNNPoolError(
            f"the detector has {len(maps)} heads but the prior configuration has "
            f"{len(config.anchor_sizes)} anchor sizes {config.anchor_sizes}"
        )
    strides = tuple(head_stride((rows_img, cols_img), m) for m in maps)
    parts = []
    for (rows, cols), stride, anchor in zip(maps, strides, config.anchor_sizes, strict=True):
        cy, cx = np.meshgrid(
            (np.arange(rows) + 0.5) * stride / rows_img, (np.arange(cols) + 0.5) * stride / cols_img, indexing="ij"
        )
        w = np.full(rows * cols, anchor / cols_img)
        h = np.full(rows * cols, anchor / rows_img)
        parts.append(np.stack([cx.ravel(), cy.ravel(), w, h], axis=-1))
    boxes = np.concatenate(parts).astype(np.float32)
    if config.clip:
        boxes = np.clip(boxes, 0.0, 1.0)
    return Priors(boxes, (rows_img, cols_img), maps, strides, config)


__all__ = ["PriorConfig", "Priors", "FACE_M4_PRIORS", "FACE_QUANT_PRIORS", "head_stride", "make_priors"]
