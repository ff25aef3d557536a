"""The InvertedResidual C kernel (host build, ctypes) against the NumPy reference: bit-exact over
hypothesis-drawn blocks (both requantization forms, every clamp, wrapping biases), the derived
integers (multipliers, clamps, the ADD's rescaling) equal to TFLM's, the buffer-size formulas of
inverted_residual.h, and every status code. Runtime about 15 s."""

from __future__ import annotations

import ctypes

import invres_models as im
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnpool_tflm.reference.inverted_residual import ConvStage, derive, inverted_residual_int8
from rnnpool_tflm.runtime import invres_native as inn
from rnnpool_tflm.runtime.invres_native import InvertedResidualKernelError, PreparedInvertedResidual


@st.composite
def blocks(draw, max_channels: int = 24, max_side: int = 11):
    stride = draw(st.sampled_from([1, 2]))
    expand = draw(st.booleans())
    ci = draw(st.integers(1, max_channels))
    residual = stride == 1 and draw(st.booleans())
    co = ci if residual else draw(st.integers(1, max_channels))
    ce = draw(st.integers(1, 2 * max_channels)) if expand else ci
    acts = draw(st.tuples(*(st.integers(0, 3) for _ in range(4))))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, max_side)), draw(st.integers(1, max_side)), ci)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    p = im.random_params(
        rng,
        ci,
        ce,
        co,
        stride,
        expand,
        residual,
        acts,
        per_channel=draw(st.booleans()),
        biases=draw(st.booleans()),
        gain=draw(st.sampled_from([0.05, 0.5, 1.0, 3.0, 40.0])),
        calibrated=draw(st.booleans()),
    )
    return p, im.random_input(rng, shape)


@settings(max_examples=600)
@given(blocks())
def test_the_kernel_equals_the_reference(case):
    p, x = case
    np.testing.assert_array_equal(PreparedInvertedResidual(p, x.shape)(x), inverted_residual_int8(x, p))


def _with_stage(p, name: str, **changes):
    stage = getattr(p, name)
    return p.__class__(**{**p.__dict__, name: ConvStage(**{**stage.__dict__, **changes})})


def test_both_requantization_forms_are_exact():
    rng = np.random.default_rng(11)
    p = im.random_params(rng, 8, 16, 8, 1, True, True, (3, 3, 0, 0))
    x = im.random_input(rng, (2, 9, 7, 8))
    kernel = PreparedInvertedResidual(p, x.shape)
    assert kernel.requant_forms() == {"expand": "smmlar", "depthwise": "smmlar", "project": "smmlar", "add": "smmlar"}
    # Multipliers of 0.5 and more (shift >= 0) and biases near 2^31 take the general form; the
    # accumulator then wraps exactly as TFLM's int32 does.
    big = _with_stage(p, "expand", scales=np.full(16, p.expand.scales.max() * 4000, np.float32))
    huge_bias = _with_stage(p, "project", bias=np.full(8, 2**31 - 1000, np.int32))
    for q, stage in ((big, "expand"), (huge_bias, "project")):
        kernel = PreparedInvertedResidual(q, x.shape)
        assert kernel.requant_forms()[stage] == "general"
        np.testing.assert_array_equal(kernel(x), inverted_residual_int8(x, q))
    assert PreparedInvertedResidual(big, x.shape).multiplier("expand", 0)[1] >= 0


def test_no_expansion_reads_the_input_as_the_expanded_map():
    rng = np.random.default_rng(12)
    p = im.random_params(rng, 6, 6, 6, 1, expand=False, residual=True)
    x = im.random_input(rng, (1, 5, 9, 6))
    kernel = PreparedInvertedResidual(p, x.shape)
    assert kernel.requant_forms()["expand"] == "absent"
    np.testing.assert_array_equal(kernel(x), inverted_residual_int8(x, p))


def test_the_derived_integers_are_tflms():
    rng = np.random.default_rng(13)
    p = im.random_params(rng, 5, 12, 5, 1, True, True, (3, 1, 2, 3))
    a = derive(p)
    kernel = PreparedInvertedResidual(p, (1, 4, 4, 5))
    for stage, arith, channels in (("expand", a.expand, 12), ("depthwise", a.depthwise, 12), ("project", a.project, 5)):
        assert [kernel.multiplier(stage, c) for c in range(channels)] == list(
            zip(arith.multipliers.tolist(), arith.shifts.tolist(), strict=True)
        )
        assert kernel.activation_range(stage) == (arith.lo, arith.hi)
    add = a.add
    assert kernel.add_params() == (
        add.input1_multiplier,
        add.input1_shift,
        add.input2_multiplier,
        add.input2_shift,
        add.output_multiplier,
        add.output_shift,
        add.lo,
        add.hi,
    )
    with pytest.raises(InvertedResidualKernelError, match="INVRES_ERR_BAD_CHANNELS"):
        kernel.multiplier("project", 5)


def _a8(v: int) -> int:
    return (v + 7) // 8 * 8


@pytest.mark.parametrize(
    "h, w, ci, ce, co, stride, expand, residual",
    [
        (30, 40, 64, 128, 32, 1, True, False),
        (30, 40, 32, 64, 32, 1, True, True),
        (30, 40, 32, 64, 64, 2, True, False),
        (7, 5, 3, 3, 5, 2, False, False),
        (1, 1, 5, 9, 5, 1, True, True),
    ],
)
def test_buffer_sizes_follow_the_documented_formulas(h, w, ci, ce, co, stride, expand, residual):
    p = im.random_params(np.random.default_rng(0), ci, ce, co, stride, expand, residual)
    cfg = inn.make_config(p, (1, h, w, ci))
    wo = -(-w // stride)
    wr = (wo - 1) * stride + 3
    e = ce if expand else 0
    ci4, ce4 = -(-ci // 4) * 4, -(-ce // 4) * 4
    prepared = 256 + 8 * (e + ce + co)
    scratch = (
        _a8(16 * (e + ce + co))
        + (2048 if residual else 0)
        + _a8(3 * wr * ce)
        + (_a8(8 * ci4) if expand else 0)
        + _a8(8 * ce4)
    )
    assert inn.buffer_bytes(cfg) == (prepared, scratch)


def test_face_m4_block_one_needs_a_small_scratch():
    """The expanded map of Face-M4's first block is 30*40*128 = 153,600 bytes; the kernel never holds it."""
    p = im.random_params(np.random.default_rng(0), 64, 128, 32, 1, True, False)
    assert inn.buffer_bytes(inn.make_config(p, (1, 30, 40, 64))) == (256 + 8 * 288, 4608 + 16128 + 512 + 1024)


# -- status codes -----------------------------------------------------------------------------------


def _status(name: str) -> int:
    return inn.status_codes()[name]


def test_status_codes_are_named_and_described():
    codes = inn.status_codes()
    assert codes["INVRES_OK"] == 0 and len(codes) == 16
    assert all(inn.status_text(c) for c in codes.values())
    assert inn.status_name(99).startswith("unknown")


@pytest.mark.parametrize(
    "override, expected",
    [
        (dict(batch=0), "INVRES_ERR_BAD_DIMS"),
        (dict(in_cols=-3), "INVRES_ERR_BAD_DIMS"),
        (dict(in_channels=4097), "INVRES_ERR_BAD_CHANNELS"),
        (dict(out_channels=0), "INVRES_ERR_BAD_CHANNELS"),
        (dict(stride=3), "INVRES_ERR_BAD_STRIDE"),
        (dict(stride=0), "INVRES_ERR_BAD_STRIDE"),
        (dict(expand=2), "INVRES_ERR_BAD_STRUCTURE"),
        (dict(residual=1, out_channels=3), "INVRES_ERR_BAD_STRUCTURE"),
        (dict(residual=1, stride=2), "INVRES_ERR_BAD_STRUCTURE"),
        (dict(expand=0), "INVRES_ERR_BAD_CHANNELS"),
        (dict(depthwise_activation=4), "INVRES_ERR_BAD_ACTIVATION"),
        (dict(add_activation=-1), "INVRES_ERR_BAD_ACTIVATION"),
        (dict(add_activation=3), "INVRES_ERR_BAD_STRUCTURE"),
        (dict(batch=1 << 20, in_rows=1 << 10, in_cols=1 << 10), "INVRES_ERR_SIZE_OVERFLOW"),
    ],
)
def test_the_config_validator_names_the_problem(override, expected):
    p = im.random_params(np.random.default_rng(0), 4, 8, 5, 1, True, False)
    cfg = inn.make_config(p, (1, 6, 6, 4), **override)
    assert inn.validate(cfg) == _status(expected)
    assert inn.buffer_bytes(cfg) == (0, 0)


@pytest.mark.parametrize(
    "override, expected",
    [
        (dict(input=(0.0, 0)), "INVRES_ERR_BAD_SCALE"),
        (dict(output=(float("nan"), 0)), "INVRES_ERR_BAD_SCALE"),
        (dict(expanded=(float("inf"), 0)), "INVRES_ERR_BAD_SCALE"),
        (dict(depthwise=(-1.0, 0)), "INVRES_ERR_BAD_SCALE"),
        (dict(projected=(0.1, 128)), "INVRES_ERR_BAD_ZERO_POINT"),
        (dict(input=(0.1, -129)), "INVRES_ERR_BAD_ZERO_POINT"),
        (dict(project_scale_count=2), "INVRES_ERR_BAD_SCALE_COUNT"),
        (dict(depthwise_scales=np.full(8, -0.5, np.float32)), "INVRES_ERR_BAD_SCALE"),
        (dict(expand_scales=np.full(8, 3e30, np.float32)), "INVRES_ERR_MULTIPLIER_RANGE"),
        (dict(output=(1e-12, 0)), "INVRES_ERR_MULTIPLIER_RANGE"),  # the ADD's output multiplier is not below 1
        (dict(projected=(1e-12, 0)), "INVRES_ERR_ACTIVATION_RANGE"),  # ReLU6's upper bound: 6 / 1e-12 steps
        (dict(project_weights=None), "INVRES_ERR_NULL_POINTER"),
    ],
)
def test_the_params_validator_names_the_problem(override, expected):
    p = im.random_params(np.random.default_rng(0), 4, 8, 4, 1, True, True, (3, 3, 3, 0))
    cfg = inn.make_config(p, (1, 6, 6, 4))
    assert inn.validate(cfg, inn.Params(p)) == 0
    assert inn.validate(cfg, inn.Params(p, **override)) == _status(expected)
    with pytest.raises(InvertedResidualKernelError, match=expected):
        PreparedInvertedResidual(p, (1, 6, 6, 4), **override)


def test_absent_stages_quantizations_are_not_read():
    p = im.random_params(np.random.default_rng(0), 4, 4, 6, 2, expand=False, residual=False)
    cfg = inn.make_config(p, (1, 6, 6, 4))
    assert inn.validate(cfg, inn.Params(p, expanded=(float("nan"), 500), projected=(0.0, -999))) == 0


def test_prepare_and_eval_check_their_buffers():
    lib = inn.library()
    p = im.random_params(np.random.default_rng(1), 4, 8, 4, 1, True, True)
    kernel = PreparedInvertedResidual(p, (1, 5, 5, 4))
    cfg, params = kernel.cfg, kernel.params
    pb, sb = kernel.prepared_bytes, kernel.scratch_bytes
    buf = np.zeros(pb + 16, np.uint8)
    base = buf.ctypes.data + (-buf.ctypes.data) % 8
    assert lib.invres_s8_prepare(ctypes.byref(cfg), ctypes.byref(params.c), base + 4, pb) == _status(
        "INVRES_ERR_MISALIGNED"
    )
    assert lib.invres_s8_prepare(ctypes.byref(cfg), ctypes.byref(params.c), base, pb - 8) == _status(
        "INVRES_ERR_BUFFER_TOO_SMALL"
    )
    assert not buf.any()  # nothing written by a failed prepare
    assert lib.invres_s8_prepare(ctypes.byref(cfg), ctypes.byref(params.c), None, pb) == _status(
        "INVRES_ERR_NULL_POINTER"
    )
    x = np.zeros((1, 5, 5, 4), np.int8)
    y = np.zeros((1, 5, 5, 4), np.int8)
    xp, yp = x.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)), y.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))
    scratch = kernel.scratch.ctypes.data
    assert lib.invres_s8_eval(
        kernel.prepared.ctypes.data, ctypes.byref(params.constants), xp, yp, scratch, sb - 1
    ) == _status("INVRES_ERR_BUFFER_TOO_SMALL")
    assert lib.invres_s8_eval(
        kernel.prepared.ctypes.data, ctypes.byref(params.constants), xp, yp, scratch + 4, sb
    ) == _status("INVRES_ERR_MISALIGNED")
    assert lib.invres_s8_eval(base, ctypes.byref(params.constants), xp, yp, scratch, sb) == _status(
        "INVRES_ERR_NOT_PREPARED"
    )
    assert lib.invres_s8_eval(
        kernel.prepared.ctypes.data, ctypes.byref(inn.CConstants()), xp, yp, scratch, sb
    ) == _status("INVRES_ERR_NULL_POINTER")
    assert lib.invres_s8_eval(kernel.prepared.ctypes.data, ctypes.byref(params.constants), xp, yp, scratch, sb) == 0
