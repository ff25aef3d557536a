"""Quantized parameters of one int8 RNNPool op and how float weights become them.

See docs/quantization.md, sections 1, 3 and 8.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Tuple

import numpy as np

from ..core.config import RNNPoolConfig
from ..core.weights import FastGRNNWeights, RNNPoolWeights

Q12_ONE = 4096
Q14_ONE = 16384
SAT25_MIN, SAT25_MAX = -(1 << 24), (1 << 24) - 1


def round_half_away(v):
    """Round half away from zero (C's round(), TfLiteRound), elementwise."""
    v = np.asarray(v, np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize_multiplier(m: float) -> Tuple[int, int]:
    """TFLite QuantizeMultiplier: m ~= M * 2^(n - 31) with M in [2^30, 2^31)."""
    m = float(m)
    if not math.isfinite(m) or m < 0:
        raise ValueError(f"multiplier must be finite and non-negative, got {m!r}")
    if m == 0.0:
        return 0, 0
    f, n = math.frexp(m)
    q = int(round_half_away(f * (1 << 31)))
    if q == 1 << 31:
        q //= 2
        n += 1
    if n < -31:
        return 0, 0
    if n > 30:
        raise ValueError(f"multiplier {m!r} is too large (exponent {n} > 30)")
    return q, n


def symmetric_quantize(w: np.ndarray, per_channel: bool) -> Tuple[np.ndarray, np.ndarray]:
    """w: [out, in] float -> (int8 [out, in], float32 scales [out] or [1]); s = max|w|/127."""
    w = np.asarray(w, np.float64)
    absmax = np.abs(w).max(axis=1) if per_channel else np.array([np.abs(w).max()])
    scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
    q = np.clip(round_half_away(w / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q, scale


def quantize_bias(b: np.ndarray) -> np.ndarray:
    return np.clip(round_half_away(np.asarray(b, np.float64) * Q12_ONE), SAT25_MIN, SAT25_MAX).astype(np.int32)


def q14_sigmoid(v: float) -> int:
    return int(round_half_away(Q14_ONE / (1.0 + math.exp(-float(v)))))


@dataclasses.dataclass
class QuantizedRNNPool:
    """Everything the int8 RNNPool op needs, in the op's tensor layout."""

    config: RNNPoolConfig
    input_scale: np.float32
    input_zero_point: int
    output_scale: np.float32
    output_zero_point: int
    w1: np.ndarray  # int8 [h1, k]
    w1_scale: np.ndarray  # float32 [h1] or [1]
    u1: np.ndarray  # int8 [h1, h1]
    u1_scale: np.ndarray
    bias1: np.ndarray  # int32 [2, h1] (gate, update), Q12
    w2: np.ndarray  # int8 [h2, h1]
    w2_scale: np.ndarray
    u2: np.ndarray  # int8 [h2, h2]
    u2_scale: np.ndarray
    bias2: np.ndarray  # int32 [2, h2]
    scalars: np.ndarray  # int16 [2, 2] = [[A1, B1], [A2, B2]], Q14

    @property
    def channels(self) -> int:
        return int(self.w1.shape[1])

    @property
    def hidden_dims(self) -> Tuple[int, int]:
        return int(self.w1.shape[0]), int(self.w2.shape[0])


def quantize_rnnpool(
    weights: RNNPoolWeights,
    config: RNNPoolConfig,
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    per_channel: bool = True,
) -> QuantizedRNNPool:
    """Float weights (Keras orientation) + input/output quantization -> op parameters."""
    weights.validate()
    for name, s in (("input_scale", input_scale), ("output_scale", output_scale)):
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"{name} must be a positive finite number, got {s!r}")
    for name, zp in (("input_zero_point", input_zero_point), ("output_zero_point", output_zero_point)):
        if not -128 <= int(zp) <= 127:
            raise ValueError(f"{name} must be in [-128, 127], got {zp!r}")

    def cell(c: FastGRNNWeights):
        w, ws = symmetric_quantize(np.asarray(c.w).T, per_channel)
        u, us = symmetric_quantize(np.asarray(c.u).T, per_channel)
        bias = np.stack([quantize_bias(c.bias_gate), quantize_bias(c.bias_update)])
        return w, ws, u, us, bias, [q14_sigmoid(c.zeta), q14_sigmoid(c.nu)]

    w1, w1s, u1, u1s, b1, s1 = cell(weights.rnn1)
    w2, w2s, u2, u2s, b2, s2 = cell(weights.rnn2)
    return QuantizedRNNPool(
        config,
        np.float32(input_scale),
        int(input_zero_point),
        np.float32(output_scale),
        int(output_zero_point),
        w1,
        w1s,
        u1,
        u1s,
        b1,
        w2,
        w2s,
        u2,
        u2s,
        b2,
        np.array([s1, s2], dtype=np.int16),
    )


def dequantized_weights(p: QuantizedRNNPool) -> RNNPoolWeights:
    """The float weights the quantized op actually represents (Keras orientation)."""

    def cell(w, ws, u, us, bias, scalars):
        ws = np.broadcast_to(ws.astype(np.float64), (w.shape[0],))
        us = np.broadcast_to(us.astype(np.float64), (u.shape[0],))
        a, b = (float(s) / Q14_ONE for s in scalars)
        logit = lambda s: float(np.log(s / (1 - s))) if 0 < s < 1 else (100.0 if s >= 1 else -100.0)
        return FastGRNNWeights(
            (w * ws[:, None]).T.astype(np.float32),
            (u * us[:, None]).T.astype(np.float32),
            bias[0] / Q12_ONE,
            bias[1] / Q12_ONE,
            logit(a),
            logit(b),
        )

    return RNNPoolWeights(
        cell(p.w1, p.w1_scale, p.u1, p.u1_scale, p.bias1, p.scalars[0]),
        cell(p.w2, p.w2_scale, p.u2, p.u2_scale, p.bias2, p.scalars[1]),
    )
