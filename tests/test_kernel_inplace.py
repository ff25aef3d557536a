"""The RNNPool op in place: eval with the output overlapping the input at the lag
rnnpool_s8_inplace_lag gives (C via ctypes) equals the non-overlapping run; with the
float variant (where any changed input value shows in the output) one element closer
breaks it, so the lag is tight. Runtime a few seconds."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from hypothesis import given, settings
from test_kernel_host import kernel_cases, random_case

from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.runtime import native

# Face-M4's op (input 120x160x4 int8 = 640 B per row, patch 8, stride 4, h2 = 16: 64 B per output
# pixel), worked out by hand from the write order in docs/kernel.md ("In place"):
# - cached, no padding: output row i (39 pixels, 2496 B) ends at 2496(i + 1) when input row 4i + 7 is
#   done, the next read at 640(4i + 8) = 2560i + 5120: end - next = -64i - 2624, largest at i = 0;
#   inside a row, patch j ends at 2496i + 64(j + 1) with the next read 2560i + 4512 + 16j: smaller.
# - cached, output_pad (1, 1): rows of 40 pixels (2560 B, the right pad written with the row's last
#   patch): end - next = 2560(i + 1) - (2560i + 5120) = -2560 for every row; patch j < 38 of row i:
#   2560i + 64(j + 1) - (2560i + 4512 + 16j) <= -2672. The bottom pad is written after the last read.
# - batch 2 with padding: image 0's bottom pad ends at 76800 while image 1 (input offset 76800) is
#   still unread: 76800 - 76800 = 0 dominates.
# - recompute: patch (i, j) is written before patch (i, j + 1) reads from its first pixel,
#   2560i + 16(j + 1): end - next = 2560i + 64(j + 1) - 2560i - 16(j + 1) = 48(j + 1), largest at
#   j = 37 (1824); the row's last patch (with its right pad) ends where row i + 1 starts reading.
FACE_M4_LAGS = [
    ((1, 120, 160, 4), (0, 0), "cached", -2624),
    ((1, 120, 160, 4), (1, 1), "cached", -2560),
    ((2, 120, 160, 4), (1, 1), "cached", 0),
    ((1, 120, 160, 4), (0, 0), "recompute", 1824),
    ((1, 120, 160, 4), (1, 1), "recompute", 1824),
]


@pytest.mark.parametrize("shape, padding, mode, lag", FACE_M4_LAGS)
def test_face_m4_lags_match_the_hand_derivation(shape, padding, mode, lag):
    config = RNNPoolConfig.create(8, 4, (16, 16), output_padding=padding, rnn1_mode=mode)
    assert native.layer_inplace_lag(config, shape) == lag
    assert native.layer_inplace_lag(config, shape, "float32") == 4 * lag  # every byte count scales by 4


def test_an_invalid_config_is_refused():
    cfg = native.make_config(RNNPoolConfig.create(8, 4, 16), (1, 6, 6, 4))  # patch larger than the input
    with pytest.raises(native.KernelError, match="RNNPOOL_ERR_PATCH_TOO_LARGE"):
        native.inplace_lag(cfg)
    assert native.library().rnnpool_s8_inplace_lag(ctypes.byref(cfg), None) != 0


def _overlapped(prepared, eval_fn, x: np.ndarray, out_shape, out_dtype, lag: int) -> np.ndarray:
    """Runs eval with the input starting `lag` bytes after the output, in one buffer."""
    out_bytes = int(np.prod(out_shape)) * np.dtype(out_dtype).itemsize
    o = max(0, -lag)
    i = o + lag
    buf = native.aligned_buffer(max(o + out_bytes, i + x.nbytes) + 8)
    buf[i : i + x.nbytes] = np.frombuffer(np.ascontiguousarray(x).tobytes(), np.uint8)
    pointer = ctypes.POINTER(np.ctypeslib.as_ctypes_type(out_dtype))
    status = eval_fn(
        prepared.prepared.ctypes.data,
        ctypes.cast(buf.ctypes.data + i, pointer),
        ctypes.cast(buf.ctypes.data + o, pointer),
        prepared.scratch.ctypes.data,
        prepared.scratch.size,
    )
    assert status == 0
    return buf[o : o + out_bytes].copy().view(out_dtype).reshape(out_shape)


CASES = [  # shape, patch, strides, padding, output padding, mode
    ((1, 20, 24, 4), (8, 8), (4, 4), "valid", (1, 1), "cached"),  # Face-M4-like
    ((1, 20, 24, 4), (8, 8), (4, 4), "valid", (1, 1), "recompute"),
    ((2, 13, 11, 3), (4, 3), (2, 2), "same", (0, 2), "cached"),  # batch, zero padding
    ((2, 13, 11, 3), (4, 3), (2, 2), "same", (2, 0), "recompute"),
    ((1, 17, 19, 5), (3, 2), (5, 4), "valid", (1, 1), "cached"),  # stride above the patch: rows skipped
    ((1, 9, 12, 8), (6, 6), (2, 3), "same", (0, 0), "cached"),  # output bytes above the input's
    ((3, 7, 6, 2), (7, 6), (1, 1), "valid", (3, 3), "recompute"),  # one patch per image
]


@pytest.mark.parametrize("shape, patch, strides, padding, out_pad, mode", CASES)
def test_int8_in_place_at_the_lag_equals_the_separate_run(shape, patch, strides, padding, out_pad, mode):
    case = random_case(
        np.random.default_rng(sum(shape)),
        channels=shape[3],
        hidden=(6, 5),
        patch=patch,
        strides=strides,
        padding=padding,
        gate="sigmoid",
        update="tanh",
        per_channel=True,
        shape=shape,
        zeta=1.0,
        nu=-2.0,
        input_scale=0.03,
        output_scale=0.01,
        weight_gain=1.0,
        bias_gain=1.0,
        output_padding=out_pad,
        rnn1_mode=mode,
    )
    kernel = native.PreparedS8(case.params, case.x.shape)
    lag = native.inplace_lag(kernel.cfg)
    expected = kernel(case.x)
    np.testing.assert_array_equal(expected, case.expected)
    eval_fn = native.library().rnnpool_s8_eval
    run = lambda d: _overlapped(kernel, eval_fn, case.x, kernel.output_shape, np.int8, d)  # noqa: E731
    np.testing.assert_array_equal(run(lag), expected)
    np.testing.assert_array_equal(run(lag + 3), expected)  # further apart is safe too
    assert native.inplace_lag(kernel.cfg, "float32") == 4 * lag  # every offset counts 4-byte elements there


@pytest.mark.parametrize("shape, patch, strides, padding, out_pad, mode", CASES)
def test_float_in_place_at_the_lag_and_not_closer(shape, patch, strides, padding, out_pad, mode):
    rng = np.random.default_rng(sum(shape))
    config = RNNPoolConfig.create(patch, strides, (6, 5), padding, output_padding=out_pad, rnn1_mode=mode)
    weights = RNNPoolWeights.random(shape[3], 6, 5, rng)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = native.PreparedF32(weights, config, x.shape)
    lag = native.inplace_lag(kernel.cfg, "float32")
    eval_fn = native.library().rnnpool_f32_eval
    run = lambda d: _overlapped(kernel, eval_fn, x, kernel.output_shape, np.float32, d)  # noqa: E731
    expected = kernel(x)
    np.testing.assert_array_equal(run(lag), expected)
    if lag > -x.nbytes:  # tight: one element closer and a still unread input value is overwritten first
        assert not np.array_equal(run(lag - 4), expected)
    else:  # every output byte comes after the last read: any overlap works
        assert lag == -x.nbytes and shape[0] == 1


@settings(max_examples=300)
@given(case=kernel_cases(max_channels=8, max_hidden=6))
def test_in_place_at_the_lag_over_random_configurations(case):
    kernel = native.PreparedS8(case.params, case.x.shape)
    lag = native.inplace_lag(kernel.cfg)
    assert -case.x.nbytes <= lag
    run = _overlapped(kernel, native.library().rnnpool_s8_eval, case.x, kernel.output_shape, np.int8, lag)
    np.testing.assert_array_equal(run, case.expected)
