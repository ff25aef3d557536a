"""The golden int8 reference: its building blocks against exact arithmetic, and the
whole op against the float reference (docs/quantization.md)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.reference import (
    dequantized_weights,
    derive_multipliers,
    int8_ref,
    lut,
    quantize_multiplier,
    quantize_rnnpool,
    rnnpool_float,
    rnnpool_int8,
    state_frac_bits,
)


def test_committed_c_tables_match_the_generator():
    assert lut.default_header_path().read_text() == lut.header_text()


@given(st.floats(min_value=2.0**-31, max_value=1e9, allow_nan=False))
def test_quantize_multiplier_represents_m_to_31_bits(m):
    mult, shift = quantize_multiplier(m)
    assert 2**30 <= mult < 2**31
    assert abs(Fraction(mult) * Fraction(2) ** (shift - 31) / Fraction(m) - 1) <= Fraction(1, 2**31)


def test_quantize_multiplier_edge_cases():
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1.0) == (2**30, 1)
    assert quantize_multiplier(2.0**-40) == (0, 0)  # underflows to zero
    with pytest.raises(ValueError, match="too large"):
        quantize_multiplier(2.0**31)
    with pytest.raises(ValueError, match="non-negative"):
        quantize_multiplier(-1.0)


@given(st.integers(-(2**31), 2**31 - 1), st.integers(2**30, 2**31 - 1), st.integers(-31, 30))
def test_rq_is_round_half_up_of_the_exact_product(v, mult, shift):
    exact = Fraction(v * mult, 2 ** (31 - shift))
    assert int(int8_ref.rq(v, mult, shift)) == math.floor(exact + Fraction(1, 2))


def test_hard_activations_are_exact_on_the_q12_grid():
    g = np.arange(-3 * 4096, 3 * 4096 + 1, dtype=np.int64)
    real = g / 4096.0
    np.testing.assert_array_equal(int8_ref.hard_sigmoid_q(g), np.clip((real + 1) / 2, 0, 1) * 16384)
    np.testing.assert_array_equal(int8_ref.hard_tanh_q(g), np.clip(real, -1, 1) * 16384)


def test_smooth_activations_track_the_exact_functions():
    g = np.arange(-20 * 4096, 20 * 4096, dtype=np.int64)
    real = g / 4096.0
    assert np.abs(int8_ref.sigmoid_q(g) - 16384 / (1 + np.exp(-real))).max() <= 2.0
    assert np.abs(int8_ref.tanh_q(g) - 16384 * np.tanh(real)).max() <= 2.5
    assert np.all(np.diff(int8_ref.sigmoid_q(g)) >= 0) and np.all(np.diff(int8_ref.tanh_q(g)) >= 0)


@settings(max_examples=300)
@given(
    a=st.integers(0, 16384),
    b=st.integers(0, 16384),
    steps=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
    hard=st.booleans(),
)
def test_state_stays_within_the_documented_bound(a, b, steps, seed, hard):
    """|h_t| <= (A + t*B)/16384 (+ one LSB of rounding per step), so int16 at Q(q) never saturates."""
    q = state_frac_bits(a, b, steps)
    rng = np.random.default_rng(seed)
    # Adversarial-ish gates: mostly saturated z and c push the bound hardest.
    z = rng.choice([0, 16384, 16383, 8192], size=(steps, 64)) if hard else rng.integers(0, 16385, (steps, 64))
    c = rng.choice([-16384, 16384], size=(steps, 64))
    h = np.zeros(64, np.int64)
    for t in range(steps):
        coef = ((a * (16384 - z[t]) + 8192) >> 14) + b
        h = ((z[t] * h + 8192) >> 14) + ((coef * c[t] + (1 << (27 - q))) >> (28 - q))
        bound_lsb = (a + (t + 1) * b) * 2.0 ** (q - 14) + (t + 1)
        assert np.abs(h).max() <= bound_lsb
        assert np.abs(h).max() <= 32767


def test_state_format_examples_from_the_spec():
    assert state_frac_bits(16384, 0, 8) == 14  # EdgeML init, Q14
    assert state_frac_bits(16384, 16384, 8) == 11  # sigmoid(nu) = 1 over 8 steps: bound 9
    assert state_frac_bits(0, 0, 8) == 14


@st.composite
def int8_cases(draw):
    r, c = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    padding = draw(st.sampled_from(["valid", "same"]))
    return dict(
        config=RNNPoolConfig.create(
            (r, c),
            (draw(st.integers(1, 5)), draw(st.integers(1, 5))),
            (draw(st.integers(1, 12)), draw(st.integers(1, 12))),
            padding,
            *draw(st.sampled_from([("sigmoid", "tanh"), ("hard_sigmoid", "hard_tanh")])),
        ),
        rows=draw(st.integers(r, 10)),
        cols=draw(st.integers(c, 10)),
        channels=draw(st.integers(1, 16)),
        zeta=draw(st.floats(-2, 4)),
        nu=draw(st.sampled_from([-100.0, -3.0, 0.0])),
        per_channel=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(max_examples=80)
@given(int8_cases())
def test_int8_reference_tracks_float_within_two_output_lsb(case):
    """Same (dequantized) weights and input: the integer op is within 2 LSB of the float op."""
    rng = np.random.default_rng(case["seed"])
    cfg = case["config"]
    weights = RNNPoolWeights.random(
        case["channels"], *cfg.hidden_dims, rng, scale=1.0, zeta=case["zeta"], nu=case["nu"]
    )
    x = rng.uniform(-1.0, 2.0, (1, case["rows"], case["cols"], case["channels"]))
    s_x, zp_x = 3.0 / 255, -43
    x_q = np.clip(np.round(x / s_x) + zp_x, -128, 127).astype(np.int8)
    x_deq = (x_q.astype(np.float64) - zp_x) * s_x
    y_float = rnnpool_float(x_deq, weights, cfg)
    lo, hi = min(y_float.min(), 0.0), max(y_float.max(), 0.0)
    # An output range under 1/8 would make the output LSB finer than the kernel's state
    # (Q11-Q14, docs/quantization.md): its rounding alone would then exceed 2 output LSB.
    s_y = max(hi - lo, 0.125) / 255
    zp_y = int(np.clip(np.round(-128 - lo / s_y), -128, 127))
    params = quantize_rnnpool(weights, cfg, s_x, zp_x, s_y, zp_y, per_channel=case["per_channel"])
    y_q = rnnpool_int8(x_q, params)
    y_ref = rnnpool_float(x_deq, dequantized_weights(params), cfg)
    err_lsb = (
        np.abs((y_q.astype(np.float64) - zp_y) * s_y - np.clip(y_ref, (-128 - zp_y) * s_y, (127 - zp_y) * s_y)) / s_y
    )
    assert err_lsb.max() <= 2.0, (err_lsb.max(), derive_multipliers(params).q1)
