"""The int8 RNNPool simulated in TensorFlow for quantization-aware training.

Forward: the integer arithmetic of docs/quantization.md (sections 2, 3, 5-7) on
int64 tensors, bit for bit: weights and input on their int8 grids, requantization
with TFLite's single rounding and the exact (M, n) multipliers of
``quantize_multiplier`` (stricter than the real-multiplier evaluation section 9
allows, so the result equals ``reference.rnnpool_int8``), Q12 pre-activations
saturated to 25 bits, the spec's sigmoid/tanh tables, Q14 gates, int16 states in
Q``q1``/Q``q2`` with q1, q2 derived from the quantized sigmoid(zeta), sigmoid(nu).

Backward: straight through every rounding point. Each quantity is carried as a
``Fixed`` pair: its exact integer and a float32 tensor whose *value* is that
integer in real units but whose *gradient* is the float FastGRNN derivative at
that point (``ste``). Training sees the integer op's values and the float op's
gradients.

`QuantizedCells` is this arithmetic behind the interface the layer's sweep uses
(layer.sweep.Cells), so the float layer and the simulation share one sweep:
projection once per pixel, RNN1 once per row/column segment, RNN2 input
projection once per summary, all patches of the batch in one tensor.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf

from ..core.config import RNNPoolConfig
from ..layer.forward import TF_ACTIVATIONS
from ..layer.sweep import Cells, sweep
from ..reference.lut import SIGMOID_TABLE, TANH_TABLE
from ..reference.quant_params import Q12_ONE, Q14_ONE, SAT25_MAX, SAT25_MIN

_I64 = tf.int64
_F64 = tf.float64


# -- straight-through estimator --------------------------------------------------


@tf.custom_gradient
def ste(surrogate, value):
    """Forward: `value` exactly. Backward: the gradient goes to `surrogate` unchanged."""

    def grad(dy):
        return dy, tf.zeros_like(value)

    return tf.identity(value), grad


class Fixed(NamedTuple):
    """A quantized quantity: `q` the exact integer (int64), `f` = q * 2^-frac in float32
    (exact: every integer here has at most 25 significant bits) carrying the float gradient."""

    q: tf.Tensor
    f: tf.Tensor


def fixed(surrogate: tf.Tensor, q: tf.Tensor, frac) -> Fixed:
    """Pairs the integer `q` (fractional bits `frac`, an int or an int64 scalar tensor)
    with `surrogate`, the float value whose derivative training should use."""
    value = tf.cast(q, tf.float32) * _pow2(-tf.cast(frac, tf.float32))
    return Fixed(q, ste(surrogate, value))


def _pow2(e):
    return tf.pow(tf.constant(2.0, e.dtype), e)


# -- integer helpers (section 3) ------------------------------------------------------


def round_half_away(v):
    """Round half away from zero (C round()), elementwise, in v's float dtype."""
    return tf.sign(v) * tf.floor(tf.abs(v) + 0.5)


def _shift_right(v, n):
    return tf.bitwise.right_shift(v, tf.cast(n, _I64))


def _shift_left_one(n):
    return tf.bitwise.left_shift(tf.constant(1, _I64), tf.cast(n, _I64))


def quantize_multiplier(m: tf.Tensor):
    """TFLite QuantizeMultiplier on a float64 tensor m > 0: (M, n) int64 with
    m ~= M * 2^(n - 31), M in [2^30, 2^31); an underflow gives (0, 0).

    frexp by reading the IEEE exponent field; scaling by 2^(31 - n) is exact."""
    m = tf.convert_to_tensor(m, _F64)
    bits = tf.bitcast(m, _I64)
    n = tf.bitwise.bitwise_and(_shift_right(bits, 52), 0x7FF) - 1022  # m = f * 2^n, f in [0.5, 1)
    scale = tf.bitcast(tf.bitwise.left_shift(31 - n + 1023, tf.constant(52, _I64)), _F64)  # 2^(31 - n)
    mult = tf.cast(tf.floor(m * scale + 0.5), _I64)
    carry = tf.equal(mult, 1 << 31)
    mult = tf.where(carry, tf.constant(1 << 30, _I64), mult)
    n = tf.where(carry, n + 1, n)
    under = (m <= 0.0) | (n < -31)
    return tf.where(under, tf.zeros_like(mult), mult), tf.where(under, tf.zeros_like(n), n)


def rq(v, mult, shift):
    """(v*M + 2^(30-n)) >> (31-n): TFLite's single rounding, int64 (mult/shift broadcast)."""
    total = 31 - shift
    return _shift_right(v * mult + _shift_left_one(total - 1), total)


def sat25(v):
    return tf.clip_by_value(v, tf.constant(SAT25_MIN, _I64), tf.constant(SAT25_MAX, _I64))


def sat16(v):
    return tf.clip_by_value(v, tf.constant(-32768, _I64), tf.constant(32767, _I64))


def int_matmul(a, b):
    """Exact integer a @ b: every accumulator of section 4 is below 2^31, exact in float64."""
    return tf.cast(tf.matmul(tf.cast(a, _F64), tf.cast(b, _F64)), _I64)


def int_tensordot(a, b):
    return tf.cast(tf.tensordot(tf.cast(a, _F64), tf.cast(b, _F64), axes=1), _I64)


# -- section 5: nonlinearities, Q12 in, Q14 out ------------------------------------------

_S = tf.constant(SIGMOID_TABLE.astype(np.int64))
_T = tf.constant(TANH_TABLE.astype(np.int64))


def _interpolate(table, v, lo, hi, frac_bits):
    u = tf.clip_by_value(v, tf.constant(lo, _I64), tf.constant(hi, _I64)) - lo
    i = _shift_right(u, frac_bits)
    f = tf.bitwise.bitwise_and(u, (1 << frac_bits) - 1)
    t0, t1 = tf.gather(table, i), tf.gather(table, i + 1)
    return t0 + _shift_right((t1 - t0) * f + (1 << (frac_bits - 1)), frac_bits)


def sigmoid_q(g):
    return _interpolate(_S, g, -65536, 65535, 8)


def tanh_q(v):
    return _interpolate(_T, v, -32768, 32767, 7)


def hard_sigmoid_q(g):
    return (tf.clip_by_value(g, tf.constant(-4096, _I64), tf.constant(4096, _I64)) + 4096) * 2


def hard_tanh_q(v):
    return tf.clip_by_value(v, tf.constant(-4096, _I64), tf.constant(4096, _I64)) * 4


INT_GATES = {"sigmoid": sigmoid_q, "hard_sigmoid": hard_sigmoid_q}
INT_UPDATES = {"tanh": tanh_q, "hard_tanh": hard_tanh_q}


# -- parameters on their grids (sections 1, 2, 8) ------------------------------------------


def symmetric_scale(w_keras: tf.Tensor) -> tf.Tensor:
    """Per-output-channel scale of a Keras-orientation weight [in, out]: float32(max|w| / 127)
    computed in float64 as reference.quant_params.symmetric_quantize does; 1 for an all-zero channel."""
    absmax = tf.cast(tf.reduce_max(tf.abs(w_keras), axis=0), _F64)
    return tf.cast(tf.where(absmax > 0, absmax / 127.0, tf.ones_like(absmax)), tf.float32)


def symmetric_grid(w_keras: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """clamp(round(w / s), -127, 127) as float64 integers, [in, out]."""
    return tf.clip_by_value(round_half_away(tf.cast(w_keras, _F64) / tf.cast(scale, _F64)), -127.0, 127.0)


def fake_quantize_weight(w_keras: tf.Tensor) -> tf.Tensor:
    """w on its symmetric per-channel int8 grid (value q * s), gradient straight through."""
    w_keras = tf.convert_to_tensor(w_keras)
    scale = tf.stop_gradient(symmetric_scale(w_keras))
    grid = tf.stop_gradient(symmetric_grid(w_keras, scale))
    return ste(w_keras, tf.cast(grid * tf.cast(scale, _F64), tf.float32))


def q14_sigmoid(v: tf.Tensor) -> tf.Tensor:
    """round(16384 * sigmoid(v)) (int64), as reference.quant_params.q14_sigmoid."""
    v = tf.cast(v, _F64)
    return tf.cast(round_half_away(Q14_ONE / (1.0 + tf.exp(-v))), _I64)


def state_frac_bits(a: tf.Tensor, b: tf.Tensor, steps: int) -> tf.Tensor:
    """q = 14 - e, e the smallest e >= 0 with A + T*B <= 32767 * 2^e (int64 scalar)."""
    bound = a + steps * b
    return 14 - tf.add_n([tf.cast(bound > 32767 * (1 << k), _I64) for k in range(16)])


@dataclasses.dataclass
class CellParams:
    """One FastGRNN cell on its grids, ready for the step function."""

    w_t: tf.Tensor  # float64 integers [out, in] (op orientation), for exact products
    w_f: tf.Tensor  # float32 [in, out] on the grid, gradient to the float weight
    w_scale: tf.Tensor  # float32 [out]
    u_t: tf.Tensor
    u_f: tf.Tensor
    u_scale: tf.Tensor
    bias_q: tf.Tensor  # int64 [2, out] Q12 (gate, update)
    bias_f: tf.Tensor  # float32 [2, out] real, gradient to the float biases
    a_q: tf.Tensor  # int64 scalar Q14 sigmoid(zeta)
    b_q: tf.Tensor
    a_f: tf.Tensor  # float32 real A/16384, gradient of sigmoid(zeta)
    b_f: tf.Tensor
    frac: tf.Tensor = None  # the state format q (int64 scalar), set per layer call
    mu: tuple = None  # (M, n) of U @ h -> Q12, set per layer call


def cell_params(w, u, bias_gate, bias_update, zeta, nu, w_fq=None, u_fq=None) -> CellParams:
    """Quantizes one cell's float weights (Keras orientation) exactly as quantize_rnnpool.

    w_fq/u_fq: the weight quantizer's outputs (the same grid values, with the
    quantizer's gradient path); computed here when not given."""
    w, u = tf.convert_to_tensor(w), tf.convert_to_tensor(u)
    w_scale, u_scale = symmetric_scale(w), symmetric_scale(u)
    w_grid = tf.stop_gradient(symmetric_grid(w, w_scale))
    u_grid = tf.stop_gradient(symmetric_grid(u, u_scale))
    w_f = fake_quantize_weight(w) if w_fq is None else w_fq
    u_f = fake_quantize_weight(u) if u_fq is None else u_fq

    biases = tf.stack([tf.convert_to_tensor(bias_gate), tf.convert_to_tensor(bias_update)])
    bias_q = tf.cast(tf.clip_by_value(round_half_away(tf.cast(biases, _F64) * Q12_ONE), SAT25_MIN, SAT25_MAX), _I64)
    bias_f = ste(biases, tf.cast(bias_q, tf.float32) / Q12_ONE)

    a_q, b_q = q14_sigmoid(zeta), q14_sigmoid(nu)
    a_f = ste(tf.sigmoid(tf.cast(zeta, tf.float32)), tf.cast(a_q, tf.float32) / Q14_ONE)
    b_f = ste(tf.sigmoid(tf.cast(nu, tf.float32)), tf.cast(b_q, tf.float32) / Q14_ONE)
    return CellParams(
        tf.transpose(w_grid),
        w_f,
        tf.stop_gradient(w_scale),
        tf.transpose(u_grid),
        u_f,
        tf.stop_gradient(u_scale),
        bias_q,
        bias_f,
        tf.stop_gradient(a_q),
        tf.stop_gradient(b_q),
        a_f,
        b_f,
    )


def _multiplier(scale_f32, factor_f64):
    """(M, n) per channel of float32 scales times an exact float64 factor (section 3)."""
    return quantize_multiplier(tf.cast(scale_f32, _F64) * factor_f64)


# -- section 6: one FastGRNN step on Fixed values -------------------------------------------


def _step(px: Fixed, h: Optional[Fixed], cell: CellParams, gate: str, update: str) -> Fixed:
    int_gate, int_update = INT_GATES[gate], INT_UPDATES[update]
    float_gate, float_update = TF_ACTIVATIONS[gate], TF_ACTIVATIONS[update]
    if h is None:  # h = 0: U h = 0 and z h = 0 exactly
        pre = px
    else:
        term = sat25(rq(int_matmul(h.q, tf.transpose(cell.u_t)), *cell.mu))
        pre = fixed(px.f + tf.matmul(h.f, cell.u_f), px.q + term, 12)
    z_q = int_gate(pre.q + cell.bias_q[0])
    c_q = int_update(pre.q + cell.bias_q[1])
    z = fixed(float_gate(pre.f + cell.bias_f[0]), z_q, 14)
    c = fixed(float_update(pre.f + cell.bias_f[1]), c_q, 14)
    coef_q = _shift_right(cell.a_q * (Q14_ONE - z_q) + 8192, 14) + cell.b_q
    coef_f = cell.a_f * (1.0 - z.f) + cell.b_f
    q = cell.frac
    update_q = _shift_right(coef_q * c_q + _shift_left_one(27 - q), 28 - q)
    if h is None:
        return fixed(coef_f * c.f, sat16(update_q), q)
    keep_q = _shift_right(z_q * h.q + 8192, 14)
    return fixed(z.f * h.f + coef_f * c.f, sat16(keep_q + update_q), q)


def _run(steps: Sequence[Fixed], cell: CellParams, gate: str, update: str) -> Fixed:
    h = None
    for px in steps:
        h = _step(px, h, cell, gate, update)
    return h


# -- section 7: the layer ----------------------------------------------------------------------


class QuantizedCells(Cells):
    """RNN1 and RNN2 as the int8 kernel computes them, for the layer's sweep (layer.sweep):
    every value is a `Fixed` pair. The QAT QuantizeConfig installs these on the layer.

    input_scale: s_x (float32 scalar), the scale the int8 op stores for its input; the
    input x is float32 on the grid s_x * (q - zp)."""

    def __init__(self, rnn1: CellParams, rnn2: CellParams, input_scale, config: RNNPoolConfig):
        super().__init__(config)
        self.rnn1, self.rnn2 = rnn1, rnn2
        self.gate, self.update = config.gate_activation, config.update_activation
        steps = max(config.patch_size)
        rnn1.frac = state_frac_bits(rnn1.a_q, rnn1.b_q, steps)
        rnn2.frac = state_frac_bits(rnn2.a_q, rnn2.b_q, steps)
        q1, q2 = rnn1.frac, rnn2.frac
        s_x = tf.cast(tf.cast(tf.convert_to_tensor(input_scale), tf.float32), _F64)
        self.s_x_safe = tf.where(s_x > 0, s_x, tf.ones_like(s_x))
        rnn1.mu = _multiplier(rnn1.u_scale, _pow2(tf.cast(12 - q1, _F64)))
        rnn2.mu = _multiplier(rnn2.u_scale, _pow2(tf.cast(12 - q2, _F64)))
        self.mx1 = _multiplier(rnn1.w_scale, s_x * 4096.0)
        self.mx2 = _multiplier(rnn2.w_scale, _pow2(tf.cast(12 - q1, _F64)))

    def project_pixels(self, x) -> Fixed:
        """W1 (x - zp) in Q12; x - zp recovered exactly from the grid value."""
        x = tf.cast(x, tf.float32)
        x_centered = tf.stop_gradient(tf.round(tf.cast(x, _F64) / self.s_x_safe))
        acc = int_tensordot(x_centered, tf.transpose(self.rnn1.w_t))
        return fixed(tf.tensordot(x, self.rnn1.w_f, axes=1), sat25(rq(acc, *self.mx1)), 12)

    def project_summaries(self, s: Fixed) -> Fixed:
        return fixed(
            tf.tensordot(s.f, self.rnn2.w_f, axes=1),
            sat25(rq(int_tensordot(s.q, tf.transpose(self.rnn2.w_t)), *self.mx2)),
            12,
        )

    def run(self, rnn: int, steps: Sequence[Fixed]) -> Fixed:
        return _run(steps, self.rnn1 if rnn == 1 else self.rnn2, self.gate, self.update)

    def output(self, finals: Sequence[Fixed]) -> tf.Tensor:
        """The RNN2 final states in real units (g / 2^q2, float32, with gradients)."""
        return tf.concat([f.f for f in finals], axis=-1)


@dataclasses.dataclass
class QATOutput:
    """What the simulation computes before output quantization: `output` the RNN2 final
    states in real units (g / 2^q2, float32, with gradients), `states` the int16 integers g."""

    output: tf.Tensor
    states: tf.Tensor
    q1: tf.Tensor
    q2: tf.Tensor


def rnnpool_qat(x: tf.Tensor, input_scale, rnn1: CellParams, rnn2: CellParams, config: RNNPoolConfig) -> QATOutput:
    """x: float32 [N, H, W, k] on the grid s_x * (q - zp); input_scale: s_x (float32 scalar,
    the scale the int8 op stores for its input)."""
    cells = QuantizedCells(rnn1, rnn2, input_scale, config)
    finals = sweep(x, cells, config)
    return QATOutput(cells.output(finals), tf.concat([f.q for f in finals], axis=-1), rnn1.frac, rnn2.frac)


def layer_cells(weights: Dict[str, tf.Tensor], quantized: Optional[Dict[str, tf.Tensor]] = None):
    """CellParams of RNN1 and RNN2 from the layer's float weights (names as layers.CELL_WEIGHTS
    with suffix 1/2) and, optionally, the weight quantizers' outputs for w1, u1, w2, u2."""
    quantized = quantized or {}
    return tuple(
        cell_params(
            weights[f"w{i}"],
            weights[f"u{i}"],
            weights[f"bias_gate{i}"],
            weights[f"bias_update{i}"],
            weights[f"zeta{i}"],
            weights[f"nu{i}"],
            quantized.get(f"w{i}"),
            quantized.get(f"u{i}"),
        )
        for i in (1, 2)
    )
