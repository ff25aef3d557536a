"""Built-in synthetic data: no download, deterministic for a seed.

``line_orientation`` is the classic probe of an RNN pooling operator (paper,
appendix C.1): each image holds one noisy line segment whose orientation
(0, 45, 90 or 135 degrees) is the label.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

ORIENTATIONS = (0.0, 45.0, 90.0, 135.0)


def line_orientation(
    n: int, size: int = 32, channels: int = 1, seed: int = 0, noise: float = 0.15
) -> Tuple[np.ndarray, np.ndarray]:
    """n images [n, size, size, channels] in [0, 1] and int labels in [0, 4)."""
    if n <= 0 or size < 8 or channels <= 0:
        raise ValueError(f"need n > 0, size >= 8, channels > 0; got n={n}, size={size}, channels={channels}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(ORIENTATIONS), size=n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((n, size, size, channels), np.float32)
    for i, label in enumerate(labels):
        theta = np.deg2rad(ORIENTATIONS[label] + rng.normal(0.0, 4.0))
        cy, cx = rng.uniform(size * 0.3, size * 0.7, size=2)
        half_len = rng.uniform(size * 0.25, size * 0.45)
        width = rng.uniform(0.8, 1.8)
        dy, dx = np.sin(theta), np.cos(theta)
        along = (xx - cx) * dx + (yy - cy) * dy
        across = -(xx - cx) * dy + (yy - cy) * dx
        line = np.exp(-((across / width) ** 2)) * (np.abs(along) <= half_len)
        intensity = rng.uniform(0.6, 1.0)
        img = intensity * line + rng.normal(0.0, noise, size=line.shape)
        images[i] = np.clip(img, 0.0, 1.0)[..., None]
    return images, labels.astype(np.int32)
