"""TFLite Micro's int8 arithmetic, in NumPy: the primitives its CONV_2D,
DEPTHWISE_CONV_2D and ADD kernels use (and CMSIS-NN reproduces), exactly as the
pinned TFLM builds them (double rounding: TFLITE_SINGLE_ROUNDING and
CMSIS_NN_USE_SINGLE_ROUNDING are not defined). docs/inverted_residual.md states
each formula and where it comes from.

Integers are carried in int64 arrays; every value that TFLM keeps in an int32 is
wrapped to int32 (`wrap32`) at the same point, which is what the compiled kernels
do when a model drives an int32 past its range (C leaves it undefined; both the
host and the Cortex-M4 builds wrap).
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np

from ..core.errors import RNNPoolError
from .quant_params import quantize_multiplier

INT8_MIN, INT8_MAX = -128, 127
ADD_LEFT_SHIFT = 20  # TFLM's ADD, int8 (add_common.cc: 15 for int16)

# TFLite ActivationFunctionType (the InvertedResidual contract uses the same values).
ACTIVATION_NONE, ACTIVATION_RELU, ACTIVATION_RELU_N1_TO_1, ACTIVATION_RELU6 = 0, 1, 2, 3
_ACTIVATION_BOUNDS = {ACTIVATION_RELU: (0.0, None), ACTIVATION_RELU_N1_TO_1: (-1.0, 1.0), ACTIVATION_RELU6: (0.0, 6.0)}


class InvalidQuantization(RNNPoolError, ValueError):
    """Quantization parameters TFLM would reject (or abort on)."""


def wrap32(v) -> np.ndarray:
    """Two's-complement wrap of integers to int32, returned as int64."""
    v = np.asarray(v, np.int64)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _trunc_div(v: np.ndarray, d: int) -> np.ndarray:
    """Integer division rounding toward zero (C's `/`)."""
    q = np.abs(v) // d
    return np.where(v < 0, -q, q)


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul(a, b) on int32 values (round half up:
    the nudge is 2^30 or 1 - 2^30 and the division truncates)."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div(ab + nudge, 1 << 31)
    overflow = (a == -(1 << 31)) & (b == -(1 << 31))
    return np.where(overflow, (1 << 31) - 1, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLM's MultiplyByQuantizedMultiplier(int32 x, M, shift), double rounding:
    SRDHM(x * 2^max(shift, 0), M), then RoundingDivideByPOT by max(-shift, 0).
    The left shift wraps like the compiled `x * (1 << left_shift)`."""
    shift = np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    shifted = wrap32(np.asarray(x, np.int64) << left)
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, multiplier), right)


def multiply_by_quantized_multiplier_smaller_than_one_exp(x, multiplier, shift) -> np.ndarray:
    """ADD's MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0)."""
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), -np.asarray(shift, np.int64))


def round_half_away_f32(v: np.float32) -> float:
    """TfLiteRound on a float: round half away from zero (exact: a float32 plus 0.5 is exact in double)."""
    v = float(v)
    return float(np.sign(v) * np.floor(abs(v) + 0.5))


def _quantize(scale: np.float32, zero_point: int, value: float) -> int:
    """kernel_util.cc Quantize(): zero_point + TfLiteRound(value / scale), the division in float32."""
    t = round_half_away_f32(np.float32(value) / np.float32(scale))
    # TFLM accepts |t| up to 2^31 and then casts; beyond 2^30 the result depends on the platform's
    # float-to-int conversion and int32 overflow, so such scales (below 6 / 2^30) are rejected.
    if not abs(t) < float(1 << 30):
        raise InvalidQuantization(f"activation bound {value} / scale {float(scale)!r} is out of range")
    return int(zero_point) + int(t)


def activation_range(activation: int, scale, zero_point: int) -> Tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output with this (scale, zero point)."""
    if activation == ACTIVATION_NONE:
        return INT8_MIN, INT8_MAX
    if activation not in _ACTIVATION_BOUNDS:
        raise InvalidQuantization(f"activation {activation} is not NONE, RELU, RELU_N1_TO_1 or RELU6")
    low, high = _ACTIVATION_BOUNDS[activation]
    scale = np.float32(scale)
    lo = max(INT8_MIN, _quantize(scale, zero_point, low))
    hi = INT8_MAX if high is None else min(INT8_MAX, _quantize(scale, zero_point, high))
    return lo, hi


def conv_multipliers(input_scale, filter_scales, output_scale, channels: int) -> Tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: per output channel,
    QuantizeMultiplier(double(s_in) * double(s_w[c]) / double(s_out)); one filter scale is broadcast."""
    scales = np.asarray(filter_scales, np.float32).reshape(-1)
    if scales.size not in (1, channels):
        raise InvalidQuantization(f"{scales.size} filter scales for {channels} channels")
    s_in, s_out = float(np.float32(input_scale)), float(np.float32(output_scale))
    pairs = []
    for c in range(channels):
        real = s_in * float(scales[c if scales.size > 1 else 0]) / s_out
        try:
            pairs.append(quantize_multiplier(real))
        except ValueError as exc:
            raise InvalidQuantization(str(exc)) from None
    multipliers, shifts = zip(*pairs) if pairs else ((), ())
    return np.asarray(multipliers, np.int64), np.asarray(shifts, np.int64)


def requantize(acc, multiplier, shift, zero_point: int, lo: int, hi: int) -> np.ndarray:
    """The end of every TFLM int8 conv: MBQM, + output zero point, clamp; int8."""
    v = wrap32(multiply_by_quantized_multiplier(wrap32(acc), multiplier, shift) + int(zero_point))
    return np.clip(v, lo, hi).astype(np.int8)


@dataclasses.dataclass(frozen=True)
class AddParams:
    """TFLM's int8 ADD (add_common.cc CalculateOpDataAdd) for given quantizations."""

    input1_offset: int
    input1_multiplier: int
    input1_shift: int
    input2_offset: int
    input2_multiplier: int
    input2_shift: int
    output_offset: int
    output_multiplier: int
    output_shift: int
    lo: int
    hi: int

    @classmethod
    def create(cls, input1, input2, output, activation: int) -> AddParams:
        """input1, input2, output: (scale, zero point) pairs."""
        s1, s2, s_out = (np.float32(q[0]) for q in (input1, input2, output))
        twice_max = 2.0 * float(max(s1, s2))
        reals = (float(s1) / twice_max, float(s2) / twice_max, twice_max / ((1 << ADD_LEFT_SHIFT) * float(s_out)))
        quantized = []
        for what, real in zip(("input1", "input2", "output"), reals, strict=True):
            # QuantizeMultiplierSmallerThanOneExp: TFLITE_CHECKs (TFLM aborts) unless 0 < m < 1, shift <= 0.
            if not 0.0 < real < 1.0:
                raise InvalidQuantization(f"ADD {what} multiplier {real!r} is not in (0, 1)")
            m, n = quantize_multiplier(real)
            if n > 0:
                raise InvalidQuantization(f"ADD {what} multiplier {real!r} rounds to 1")
            quantized.append((m, n))
        lo, hi = activation_range(activation, s_out, int(output[1]))
        (m1, n1), (m2, n2), (mo, no) = quantized
        return cls(-int(input1[1]), m1, n1, -int(input2[1]), m2, n2, int(output[1]), mo, no, lo, hi)

    def __call__(self, x1, x2) -> np.ndarray:
        """reference_integer_ops::AddFunc elementwise (same shapes)."""

        def scaled(x, offset, m, n):
            shifted = (np.asarray(x, np.int64) + offset) << ADD_LEFT_SHIFT
            return multiply_by_quantized_multiplier_smaller_than_one_exp(shifted, m, n)

        raw = scaled(x1, self.input1_offset, self.input1_multiplier, self.input1_shift) + scaled(
            x2, self.input2_offset, self.input2_multiplier, self.input2_shift
        )
        out = multiply_by_quantized_multiplier_smaller_than_one_exp(raw, self.output_multiplier, self.output_shift)
        return np.clip(out + self.output_offset, self.lo, self.hi).astype(np.int8)
