"""Quantization-aware training with tfmot: RNNPool's QuantizeConfig, the integer-exact
simulation of the int8 kernel, the quantization scheme, range calibration, loading of
QAT models, and (tfmot_compat) every tfmot internal these rely on.

The public API is model.py's `__all__` (one list, not restated here)."""

from . import model as _model
from .model import *  # noqa: F403

__all__ = list(_model.__all__)
