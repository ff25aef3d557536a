"""Is a converted model right? Host run, RNNPool bit-exactness, parity with Keras, arena and fit."""

from .checker import CheckReport, check_model

__all__ = ["CheckReport", "check_model"]
