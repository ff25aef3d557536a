"""Golden int8 RNNPool in NumPy, written from docs/quantization.md.

Integer-exact: every intermediate is an int64 array holding the value the spec
defines. Section numbers below refer to that document.
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

import numpy as np

from .lut import SIGMOID_TABLE, TANH_TABLE
from .output_pad import replicate_pad
from .quant_params import Q14_ONE, SAT25_MAX, SAT25_MIN, QuantizedRNNPool, quantize_multiplier

_S = SIGMOID_TABLE.astype(np.int64)
_T = TANH_TABLE.astype(np.int64)


# -- section 3: requantization -------------------------------------------------
def rq(v, mult, shift):
    """TFLite single rounding: (v*M + 2^(30-n)) >> (31-n), elementwise, int64."""
    v, mult, shift = (np.asarray(a, np.int64) for a in (v, mult, shift))
    total = 31 - shift
    return (v * mult + (np.int64(1) << (total - 1))) >> total


def sat25(v):
    return np.clip(v, SAT25_MIN, SAT25_MAX)


def sat16(v):
    return np.clip(v, -32768, 32767)


# -- section 5: nonlinearities -------------------------------------------------
def sigmoid_q(g):
    u = np.clip(g, -65536, 65535) + 65536
    i, f = u >> 8, u & 255
    return _S[i] + (((_S[i + 1] - _S[i]) * f + 128) >> 8)


def tanh_q(v):
    u = np.clip(v, -32768, 32767) + 32768
    i, f = u >> 7, u & 127
    return _T[i] + (((_T[i + 1] - _T[i]) * f + 64) >> 7)


def hard_sigmoid_q(g):
    return (np.clip(g, -4096, 4096) + 4096) * 2


def hard_tanh_q(v):
    return np.clip(v, -4096, 4096) * 4


GATES = {"sigmoid": sigmoid_q, "hard_sigmoid": hard_sigmoid_q}
UPDATES = {"tanh": tanh_q, "hard_tanh": hard_tanh_q}


# -- section 2: state format ---------------------------------------------------
def state_frac_bits(a: int, b: int, steps: int) -> int:
    """q = 14 - e, e the smallest e >= 0 with A + T*B <= 32767 * 2^e."""
    bound = int(a) + int(steps) * int(b)
    e = 0
    while bound > 32767 * (1 << e):
        e += 1
    return 14 - e


# -- derived multipliers (what every implementation computes in Prepare) --------
@dataclasses.dataclass
class Multipliers:
    q1: int
    q2: int
    x1: Tuple[np.ndarray, np.ndarray]  # (M[h1], n[h1])
    u1: Tuple[np.ndarray, np.ndarray]
    x2: Tuple[np.ndarray, np.ndarray]
    u2: Tuple[np.ndarray, np.ndarray]
    y: Tuple[int, int]


def _per_channel(scales: np.ndarray, factor: float, hidden: int):
    # float32 scale x (float32 or power of two) is exact in double: order does not matter.
    pairs = [quantize_multiplier(float(np.float32(s)) * factor) for s in np.broadcast_to(scales, (hidden,))]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def derive_multipliers(p: QuantizedRNNPool) -> Multipliers:
    (r, c), (h1, h2) = p.config.patch_size, p.hidden_dims
    steps = max(r, c)
    q1 = state_frac_bits(p.scalars[0, 0], p.scalars[0, 1], steps)
    q2 = state_frac_bits(p.scalars[1, 0], p.scalars[1, 1], steps)
    s_x = float(np.float32(p.input_scale))
    return Multipliers(
        q1,
        q2,
        x1=_per_channel(p.w1_scale, s_x * 4096.0, h1),
        u1=_per_channel(p.u1_scale, 2.0 ** (12 - q1), h1),
        x2=_per_channel(p.w2_scale, 2.0 ** (12 - q1), h2),
        u2=_per_channel(p.u2_scale, 2.0 ** (12 - q2), h2),
        y=quantize_multiplier(2.0 ** (-q2) / float(np.float32(p.output_scale))),
    )


# -- section 6: one FastGRNN step ------------------------------------------------
def fastgrnn_q(
    steps: List[np.ndarray], u: np.ndarray, mu, bias: np.ndarray, a: int, b: int, q: int, gate, update
) -> np.ndarray:
    """Runs a sequence of projected inputs (each [N, h], Q12) from h = 0 -> final state [N, h]."""
    u = u.astype(np.int64)
    bias = bias.astype(np.int64)
    a, b = np.int64(a), np.int64(b)
    h = np.zeros_like(steps[0])
    for px in steps:
        pre = px + sat25(rq(h @ u.T, mu[0], mu[1]))
        z = gate(pre + bias[0])
        c = update(pre + bias[1])
        coef = ((a * (Q14_ONE - z) + 8192) >> 14) + b
        h = sat16(((z * h + 8192) >> 14) + ((coef * c + (np.int64(1) << (27 - q))) >> (28 - q)))
    return h


def _strided(arr, axis: int, start: int, count: int, step: int):
    index = [slice(None)] * arr.ndim
    index[axis] = slice(start, start + (count - 1) * step + 1, step)
    return arr[tuple(index)]


# -- section 7: the layer ----------------------------------------------------------
def rnnpool_int8(x_q: np.ndarray, p: QuantizedRNNPool, mult: Multipliers | None = None) -> np.ndarray:
    """int8 NHWC input -> int8 [N, Ho + pad_bottom, Wo + pad_right, 4*h2] output, bit-exact per the spec."""
    x_q = np.asarray(x_q)
    if x_q.ndim != 4 or x_q.shape[3] != p.channels:
        raise ValueError(f"input must be [N, H, W, {p.channels}], got {x_q.shape}")
    mult = mult or derive_multipliers(p)
    cfg = p.config
    geo = cfg.geometry(x_q.shape[1], x_q.shape[2])
    (r, c), (sr, sc) = cfg.patch_size, cfg.strides
    n_r, n_c = geo.out_rows, geo.out_cols
    gate, update = GATES[cfg.gate_activation], UPDATES[cfg.update_activation]
    (a1, b1), (a2, b2) = p.scalars.astype(np.int64)

    # Once per pixel: W1 (x - zp) in Q12; padding contributes exactly 0.
    acc = (x_q.astype(np.int64) - p.input_zero_point) @ p.w1.astype(np.int64).T
    px1 = sat25(rq(acc, *mult.x1))
    px1 = np.pad(px1, ((0, 0), (geo.pad_top, geo.pad_bottom), (geo.pad_left, geo.pad_right), (0, 0)))
    px1 = px1[:, : (n_r - 1) * sr + r, : (n_c - 1) * sc + c]

    rnn1 = lambda steps: fastgrnn_q(steps, p.u1, mult.u1, p.bias1, a1, b1, mult.q1, gate, update)
    row_summary = rnn1([_strided(px1, 2, t, n_c, sc) for t in range(c)])  # [N, rows, n_c, h1]
    col_summary = rnn1([_strided(px1, 1, t, n_r, sr) for t in range(r)])  # [N, n_r, cols, h1]

    project = lambda s: sat25(rq(s @ p.w2.astype(np.int64).T, *mult.x2))
    row_proj, col_proj = project(row_summary), project(col_summary)
    rows = [_strided(row_proj, 1, t, n_r, sr) for t in range(r)]
    cols = [_strided(col_proj, 2, t, n_c, sc) for t in range(c)]
    rnn2 = lambda steps: fastgrnn_q(steps, p.u2, mult.u2, p.bias2, a2, b2, mult.q2, gate, update)
    finals = [rnn2(rows), rnn2(rows[::-1]), rnn2(cols), rnn2(cols[::-1])]
    out = rq(np.concatenate(finals, axis=-1), *mult.y) + p.output_zero_point
    return replicate_pad(np.clip(out, -128, 127).astype(np.int8), cfg.output_padding)
