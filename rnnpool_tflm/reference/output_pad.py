"""The op's output replicate padding (docs/quantization.md, section 7)."""

from __future__ import annotations

from typing import Tuple

import numpy as np


def replicate_pad(y: np.ndarray, output_padding: Tuple[int, int]) -> np.ndarray:
    """[N, Ho, Wo, C] -> [N, Ho + bottom, Wo + right, C]: copies of the last row and
    column appended (PyTorch's F.pad(y, (0, right, 0, bottom), mode="replicate"))."""
    bottom, right = output_padding
    if bottom == 0 and right == 0:
        return y
    return np.pad(y, ((0, 0), (0, bottom), (0, right), (0, 0)), mode="edge")
