"""Executable specifications: the float RNNPool of Algorithm 1 and the int8 RNNPool."""

from .float_ref import fastgrnn, rnnpool_float, rnnpool_patch

__all__ = ["fastgrnn", "rnnpool_float", "rnnpool_patch"]

from .int8_ref import derive_multipliers, rnnpool_int8, state_frac_bits  # noqa: E402
from .quant_params import QuantizedRNNPool, dequantized_weights, quantize_multiplier, quantize_rnnpool  # noqa: E402

__all__ += [
    "derive_multipliers",
    "rnnpool_int8",
    "state_frac_bits",
    "QuantizedRNNPool",
    "dequantized_weights",
    "quantize_multiplier",
    "quantize_rnnpool",
]
