"""The C kernel on the host (ctypes) against the golden references.

int8: bit-exact with rnnpool_tflm.reference.rnnpool_int8 over randomized
configurations; float32: within 1e-5 of rnnpool_float; the validator's
status codes for bad configurations and parameters; the buffer sizes against
the formulas documented in rnnpool.h. Runtime about 40 s on 2 cores.
"""

from __future__ import annotations

import ctypes
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.reference import derive_multipliers, quantize_rnnpool, rnnpool_float, rnnpool_int8
from rnnpool_tflm.reference.quant_params import QuantizedRNNPool
from rnnpool_tflm.runtime import native

MAX_ELEMENTS = (2**31 - 1) // 4


# -- random cases (also used by test_kernel_sanitizers.py and test_kernel_m4.py) --------------


@dataclasses.dataclass
class KernelCase:
    params: QuantizedRNNPool
    x: np.ndarray  # int8 NHWC

    @property
    def expected(self) -> np.ndarray:
        return rnnpool_int8(self.x, self.params)


def random_case(
    rng: np.random.Generator,
    *,
    channels: int,
    hidden: tuple,
    patch: tuple,
    strides: tuple,
    padding: str,
    gate: str,
    update: str,
    per_channel: bool,
    shape: tuple,
    zeta: float,
    nu: float,
    input_scale: float,
    output_scale: float,
    weight_gain: float,
    bias_gain: float,
    zeta2: float | None = None,
    nu2: float | None = None,
    output_padding=(0, 0),
    rnn1_mode: str = "cached",
) -> KernelCase:
    """Random int8 parameters (through quantize_rnnpool) and input for one configuration."""
    cfg = RNNPoolConfig.create(patch, strides, hidden, padding, gate, update, output_padding, rnn1_mode)
    weights = RNNPoolWeights.random(channels, hidden[0], hidden[1], rng, scale=weight_gain, zeta=zeta, nu=nu)
    weights.rnn2.zeta = zeta if zeta2 is None else zeta2
    weights.rnn2.nu = nu if nu2 is None else nu2
    for cell in (weights.rnn1, weights.rnn2):
        cell.bias_gate = (cell.bias_gate * bias_gain).astype(np.float32)
        cell.bias_update = (cell.bias_update * bias_gain).astype(np.float32)
    params = quantize_rnnpool(
        weights,
        cfg,
        input_scale,
        int(rng.integers(-128, 128)),
        output_scale,
        int(rng.integers(-128, 128)),
        per_channel=per_channel,
    )
    x = rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    return KernelCase(params, x)


def random_cases(rng: np.random.Generator, count: int):
    """Random cases without hypothesis (for the sanitizer and M4 harnesses), all options covered."""
    for i in range(count):
        r, c = (int(v) for v in rng.integers(1, 7, 2))
        padding = "same" if i % 2 else "valid"
        low = (r, c) if padding == "valid" else (1, 1)
        shape = (
            int(rng.integers(1, 3)),
            int(rng.integers(low[0], low[0] + 9)),
            int(rng.integers(low[1], low[1] + 9)),
            int(rng.integers(1, 33)),
        )
        yield random_case(
            rng,
            channels=shape[3],
            hidden=(int(rng.integers(1, 17)), int(rng.integers(1, 17))),
            patch=(r, c),
            strides=tuple(int(v) for v in rng.integers(1, 8, 2)),
            padding=padding,
            gate=("sigmoid", "hard_sigmoid")[i // 2 % 2],
            update=("tanh", "hard_tanh")[i // 4 % 2],
            per_channel=bool(i % 3),
            shape=shape,
            zeta=float(rng.normal(0, 4)),
            nu=float(rng.normal(-2, 4)),
            zeta2=float(rng.normal(0, 4)),
            nu2=float(rng.normal(-2, 4)),
            input_scale=float(10 ** rng.uniform(-3, 0)),
            output_scale=float(10 ** rng.uniform(-3, 0.5)),
            weight_gain=float(10 ** rng.uniform(-1.5, 2.5)),
            bias_gain=float(10 ** rng.uniform(-1, 1.5)),
            output_padding=(i // 3 % 3, i // 5 % 2),
            rnn1_mode=("cached", "recompute")[i // 7 % 2],
        )


@st.composite
def kernel_cases(draw, max_channels: int = 32, max_hidden: int = 16, max_side: int = 10):
    r, c = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    padding = draw(st.sampled_from(["valid", "same"]))
    low_r, low_c = (r, c) if padding == "valid" else (1, 1)
    shape = (
        draw(st.integers(1, 3)),
        draw(st.integers(low_r, low_r + max_side)),
        draw(st.integers(low_c, low_c + max_side)),
        draw(st.integers(1, max_channels)),
    )
    scalar = st.one_of(st.sampled_from([100.0, -100.0, 0.0]), st.floats(-8.0, 8.0))
    return random_case(
        np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
        channels=shape[3],
        hidden=(draw(st.integers(1, max_hidden)), draw(st.integers(1, max_hidden))),
        patch=(r, c),
        strides=(draw(st.integers(1, 8)), draw(st.integers(1, 8))),
        padding=padding,
        gate=draw(st.sampled_from(["sigmoid", "hard_sigmoid"])),
        update=draw(st.sampled_from(["tanh", "hard_tanh"])),
        per_channel=draw(st.booleans()),
        shape=shape,
        zeta=draw(scalar),
        nu=draw(scalar),
        zeta2=draw(scalar),
        nu2=draw(scalar),
        # Wide ranges on purpose: multipliers above 1/2 take the kernel's general requantization path.
        input_scale=10.0 ** draw(st.floats(-3.0, 0.0)),
        output_scale=10.0 ** draw(st.floats(-3.0, 0.5)),
        weight_gain=10.0 ** draw(st.floats(-1.5, 2.5)),
        bias_gain=10.0 ** draw(st.floats(-1.0, 1.5)),
        output_padding=(draw(st.integers(0, 4)), draw(st.integers(0, 4))),
        rnn1_mode=draw(st.sampled_from(["cached", "recompute"])),
    )


# -- int8 --------------------------------------------------------------------------------------------


@settings(max_examples=1000)
@given(case=kernel_cases())
def test_int8_kernel_is_bit_exact_with_the_golden_reference(case):
    kernel = native.PreparedS8(case.params, case.x.shape)
    mult = derive_multipliers(case.params)
    assert kernel.state_formats() == (mult.q1, mult.q2)
    h1, h2 = case.params.hidden_dims
    applied = lambda m, n: (2**30, 29) if n == 30 else (m, n)  # noqa: E731  (same saturated results)
    for kind, (m, n), count in (("x1", mult.x1, h1), ("u1", mult.u1, h1), ("x2", mult.x2, h2), ("u2", mult.u2, h2)):
        assert [kernel.multiplier(kind, j) for j in range(count)] == [
            applied(*p) for p in zip(m.tolist(), n.tolist(), strict=True)
        ]
    assert kernel.multiplier("y") == applied(*mult.y)
    np.testing.assert_array_equal(kernel(case.x), case.expected)


def test_prepared_kernel_is_reusable_and_scratch_carries_nothing():
    rng = np.random.default_rng(7)
    case = random_case(
        rng,
        channels=5,
        hidden=(6, 3),
        patch=(4, 3),
        strides=(2, 2),
        padding="same",
        gate="sigmoid",
        update="tanh",
        per_channel=True,
        shape=(2, 9, 11, 5),
        zeta=1.0,
        nu=-2.0,
        input_scale=0.05,
        output_scale=0.01,
        weight_gain=1.0,
        bias_gain=1.0,
    )
    kernel = native.PreparedS8(case.params, case.x.shape)
    other = rng.integers(-128, 128, size=case.x.shape).astype(np.int8)
    first = kernel(case.x)
    kernel.scratch[:] = rng.integers(0, 256, kernel.scratch.size, dtype=np.uint8)  # garbage between calls
    kernel(other)
    np.testing.assert_array_equal(kernel(case.x), first)
    np.testing.assert_array_equal(first, case.expected)


@pytest.mark.parametrize("mode", ["cached", "recompute"])
@pytest.mark.parametrize(
    "shape, patch, strides, hidden, padding",
    [
        ((1, 120, 160, 4), (8, 8), (4, 4), (16, 16), "valid"),  # Face-M4
        ((1, 24, 24, 8), (6, 6), (4, 4), (8, 8), "same"),  # VWW-like
        ((1, 14, 14, 32), (6, 6), (4, 4), (16, 16), "valid"),  # MobileNetV2-like
        ((2, 3, 2, 3), (5, 4), (1, 1), (3, 5), "same"),  # patch larger than the input
    ],
)
def test_int8_kernel_on_model_shapes(shape, patch, strides, hidden, padding, mode):
    rng = np.random.default_rng(sum(shape))
    case = random_case(
        rng,
        channels=shape[3],
        hidden=hidden,
        patch=patch,
        strides=strides,
        padding=padding,
        gate="sigmoid",
        update="tanh",
        per_channel=True,
        shape=shape,
        zeta=2.0,
        nu=-3.0,
        input_scale=0.02,
        output_scale=0.005,
        weight_gain=0.7,
        bias_gain=1.0,
        rnn1_mode=mode,
    )
    np.testing.assert_array_equal(native.rnnpool_s8(case.x, case.params), case.expected)


@pytest.mark.parametrize("padding", [(1, 1), (2, 0), (0, 3), (4, 4)])
def test_output_padding_appends_copies_of_the_last_row_and_column(padding):
    rng = np.random.default_rng(31)
    kwargs = dict(
        channels=4,
        hidden=(6, 5),
        patch=(3, 4),
        strides=(2, 3),
        padding="valid",
        gate="sigmoid",
        update="tanh",
        per_channel=True,
        shape=(2, 9, 13, 4),
        zeta=1.0,
        nu=-2.0,
        input_scale=0.03,
        output_scale=0.01,
        weight_gain=1.0,
        bias_gain=1.0,
    )
    plain = random_case(np.random.default_rng(31), **kwargs)
    padded = random_case(rng, **kwargs, output_padding=padding)
    base = native.rnnpool_s8(plain.x, plain.params)
    out = native.rnnpool_s8(padded.x, padded.params)
    n, ho, wo, ch = base.shape
    assert out.shape == (n, ho + padding[0], wo + padding[1], ch)
    np.testing.assert_array_equal(out[:, :ho, :wo], base)
    for t in range(padding[1]):
        np.testing.assert_array_equal(out[:, :ho, wo + t], base[:, :, wo - 1])
    for t in range(padding[0]):
        np.testing.assert_array_equal(out[:, ho + t, :wo], base[:, ho - 1])
        np.testing.assert_array_equal(out[:, ho + t, wo:], np.repeat(base[:, ho - 1, wo - 1 :], padding[1], axis=1))


# -- float32 -------------------------------------------------------------------------------------------


@settings(max_examples=150)
@given(data=st.data())
def test_float_kernel_matches_the_float_reference(data):
    r, c = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    padding = data.draw(st.sampled_from(["valid", "same"]))
    low_r, low_c = (r, c) if padding == "valid" else (1, 1)
    shape = (
        data.draw(st.integers(1, 2)),
        data.draw(st.integers(low_r, low_r + 6)),
        data.draw(st.integers(low_c, low_c + 6)),
        data.draw(st.integers(1, 12)),
    )
    config = RNNPoolConfig.create(
        (r, c),
        (data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))),
        (data.draw(st.integers(1, 10)), data.draw(st.integers(1, 10))),
        padding,
        data.draw(st.sampled_from(["sigmoid", "hard_sigmoid"])),
        data.draw(st.sampled_from(["tanh", "hard_tanh"])),
        (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))),
        data.draw(st.sampled_from(["cached", "recompute"])),
    )
    scalar = st.one_of(st.sampled_from([100.0, -100.0]), st.floats(-6.0, 6.0))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # Weight scales up to 1: larger recurrent gains amplify float32 rounding past 1e-5.
    weights = RNNPoolWeights.random(
        shape[3],
        *config.hidden_dims,
        rng,
        scale=float(rng.uniform(0.2, 1.0)),
        zeta=data.draw(scalar),
        nu=data.draw(scalar),
    )
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    np.testing.assert_allclose(
        native.rnnpool_f32(x, weights, config), rnnpool_float(x, weights, config), rtol=0, atol=1e-5
    )


# -- buffer sizes: the formulas documented in rnnpool.h ---------------------------------------------


def _a8(v: int) -> int:
    return -(-v // 8) * 8


def documented_sizes(cfg: native.CConfig, variant: str):
    geo = native.geometry(cfg)
    even = lambda v: v + (v & 1)  # noqa: E731
    k, h1, h2, r, c = cfg.channels, cfg.hidden1, cfg.hidden2, cfg.patch_rows, cfg.patch_cols
    hp1, hp2, kp = even(h1), even(h2), even(k)
    hm = max(hp1, hp2)
    ac, ar = -(-c // cfg.stride_cols), -(-r // cfg.stride_rows)
    wo = geo.out_cols
    wu = (wo - 1) * cfg.stride_cols + c
    recompute = cfg.rnn1_mode == 1
    if variant == "int8":
        work = _a8(2 * kp) + _a8(16 * hm) + _a8(4 * hp2)
        state, inp, proj, half = 2 * hp1, 8 * hp1, 4 * hp2, 2 * h2
        prepared = (
            320 + _a8(2 * hp1 * kp) + _a8(2 * hp1 * hp1) + _a8(2 * hp2 * hp1) + _a8(2 * hp2 * hp2) + 48 * hp1 + 48 * hp2
        )
    else:
        work = _a8(8 * hm) + _a8(8 * h2)
        state, inp, proj, half = 4 * h1, 4 * h1, 4 * h2, 8 * h2
        prepared = (
            320 + _a8(4 * h1 * k) + _a8(4 * h1 * h1) + _a8(8 * h1) + _a8(4 * h2 * h1) + _a8(4 * h2 * h2) + _a8(8 * h2)
        )
    if recompute:
        scratch = work + _a8(2 * state) + _a8(2 * inp) + _a8(max(r, c) * proj) + _a8(half)
    else:
        scratch = work + _a8(inp) + _a8(ac * state) + _a8(ar * wu * state) + _a8(r * wo * proj) + _a8(c * proj)
    return prepared, scratch


@settings(max_examples=300)
@given(
    n=st.integers(1, 4),
    rows=st.integers(1, 300),
    cols=st.integers(1, 300),
    k=st.integers(1, 64),
    r=st.integers(1, 20),
    c=st.integers(1, 20),
    sr=st.integers(1, 20),
    sc=st.integers(1, 20),
    h1=st.integers(1, 256),
    h2=st.integers(1, 256),
    same=st.booleans(),
    variant=st.sampled_from(["int8", "float32"]),
    mode=st.sampled_from(["cached", "recompute"]),
)
def test_buffer_sizes_follow_the_documented_formulas(n, rows, cols, k, r, c, sr, sc, h1, h2, same, variant, mode):
    config = RNNPoolConfig.create((r, c), (sr, sc), (h1, h2), "same" if same else "valid", rnn1_mode=mode)
    cfg = native.make_config(config, (n, rows, cols, k))
    if native.validate(cfg) != 0:
        assert not same and (rows < r or cols < c)
        return
    assert native.buffer_bytes(cfg, variant) == documented_sizes(cfg, variant)


def test_scratch_does_not_grow_with_rows_or_batch():
    config = RNNPoolConfig.create(8, 4, 16)
    small = native.layer_buffer_bytes(config, (1, 16, 160, 4))
    assert native.layer_buffer_bytes(config, (3, 480, 160, 4)) == small
    assert small[1] < 40 * 1024  # Face-M4 at 160 columns: about 31 KB


def test_recompute_mode_needs_about_a_kilobyte_whatever_the_map():
    config = RNNPoolConfig.create(8, 4, 16, rnn1_mode="recompute")
    face_m4 = native.layer_buffer_bytes(config, (1, 120, 160, 4))[1]
    assert native.layer_buffer_bytes(config, (2, 480, 640, 4))[1] == face_m4 < 1200
    cached = native.layer_buffer_bytes(RNNPoolConfig.create(8, 4, 16), (1, 120, 160, 4))[1]
    assert cached > 25 * face_m4


@pytest.mark.parametrize(
    "padding, shape, patch, strides",
    [
        ("valid", (2, 13, 17, 5), (4, 3), (2, 2)),  # overlapping patches
        ("same", (1, 9, 11, 3), (3, 5), (4, 6)),  # strides above the patch: rows/columns skipped
        ("same", (1, 3, 2, 2), (5, 4), (1, 1)),  # patch larger than the input
    ],
)
def test_recompute_and_cached_modes_give_the_same_bytes(padding, shape, patch, strides):
    kwargs = dict(
        channels=shape[3],
        hidden=(7, 6),
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
        output_padding=(1, 2),
    )
    cached = random_case(np.random.default_rng(8), **kwargs)
    recompute = random_case(np.random.default_rng(8), **kwargs, rnn1_mode="recompute")
    out = native.rnnpool_s8(recompute.x, recompute.params)
    np.testing.assert_array_equal(out, native.rnnpool_s8(cached.x, cached.params))
    np.testing.assert_array_equal(out, cached.expected)


# -- validation: one fault at a time, each with its own status -------------------------------------------


def _code(name: str) -> int:
    return native.status_codes()[name]


def test_status_names_and_texts_cover_every_code():
    codes = native.status_codes()
    assert codes["RNNPOOL_OK"] == 0 and len(codes) == len(set(codes.values())) >= 19
    assert sorted(codes.values()) == list(range(len(codes)))
    assert len({native.status_text(c) for c in codes.values()}) == len(codes)
    assert native.status_name(len(codes)).startswith("unknown")


def _good_case() -> KernelCase:
    return random_case(
        np.random.default_rng(3),
        channels=3,
        hidden=(4, 5),
        patch=(3, 2),
        strides=(2, 2),
        padding="valid",
        gate="sigmoid",
        update="tanh",
        per_channel=True,
        shape=(1, 7, 6, 3),
        zeta=1.0,
        nu=-1.0,
        input_scale=0.05,
        output_scale=0.02,
        weight_gain=1.0,
        bias_gain=1.0,
    )


CONFIG_FAULTS = [
    ("batch", 0, "RNNPOOL_ERR_BAD_DIMS"),
    ("in_rows", -3, "RNNPOOL_ERR_BAD_DIMS"),
    ("in_cols", 0, "RNNPOOL_ERR_BAD_DIMS"),
    ("channels", 0, "RNNPOOL_ERR_BAD_CHANNELS"),
    ("channels", 16385, "RNNPOOL_ERR_BAD_CHANNELS"),
    ("hidden1", 0, "RNNPOOL_ERR_BAD_HIDDEN"),
    ("hidden2", 257, "RNNPOOL_ERR_BAD_HIDDEN"),
    ("patch_rows", 0, "RNNPOOL_ERR_BAD_PATCH"),
    ("patch_cols", 256, "RNNPOOL_ERR_BAD_PATCH"),
    ("stride_rows", -1, "RNNPOOL_ERR_BAD_PATCH"),
    ("stride_cols", 256, "RNNPOOL_ERR_BAD_PATCH"),
    ("padding", 2, "RNNPOOL_ERR_BAD_PADDING"),
    ("gate_activation", 2, "RNNPOOL_ERR_BAD_ACTIVATION"),
    ("update_activation", -1, "RNNPOOL_ERR_BAD_ACTIVATION"),
    ("output_pad_bottom", -1, "RNNPOOL_ERR_BAD_OUTPUT_PAD"),
    ("output_pad_right", 5, "RNNPOOL_ERR_BAD_OUTPUT_PAD"),
    ("rnn1_mode", 2, "RNNPOOL_ERR_BAD_RNN1_MODE"),
    ("in_rows", 2, "RNNPOOL_ERR_PATCH_TOO_LARGE"),
    ("in_cols", 1, "RNNPOOL_ERR_PATCH_TOO_LARGE"),
]


@pytest.mark.parametrize("field, value, expected", CONFIG_FAULTS)
def test_validator_names_each_config_fault(field, value, expected):
    case = _good_case()
    cfg = native.make_config(case.params.config, case.x.shape)
    setattr(cfg, field, value)
    assert native.validate(cfg) == _code(expected)
    assert native.validate(cfg, native.S8Params(case.params)) == _code(expected)
    weights = RNNPoolWeights.random(3, 4, 5, np.random.default_rng(1))
    assert native.validate(cfg, native.F32Params(weights), "float32") == _code(expected)
    lib = native.library()
    assert (
        lib.rnnpool_s8_prepared_bytes(ctypes.byref(cfg)) == 0 and lib.rnnpool_s8_scratch_bytes(ctypes.byref(cfg)) == 0
    )
    assert (
        lib.rnnpool_f32_prepared_bytes(ctypes.byref(cfg)) == 0 and lib.rnnpool_f32_scratch_bytes(ctypes.byref(cfg)) == 0
    )


@pytest.mark.parametrize(
    "changes",
    [
        dict(batch=2**30, in_rows=2**30, in_cols=2**30),  # products overflow 64 bits
        dict(batch=1, in_rows=2**15, in_cols=2**15, channels=1),  # 2^30 input elements > limit
        dict(in_rows=2**31 - 1, in_cols=2**31 - 1, channels=16384),
        dict(
            batch=1, in_rows=16384, in_cols=16384, channels=1, hidden2=256, stride_rows=1, stride_cols=1, padding=1
        ),  # input fits, output does not
    ],
)
def test_validator_rejects_sizes_that_overflow(changes):
    cfg = native.make_config(_good_case().params.config, (1, 7, 6, 3))
    for field, value in changes.items():
        setattr(cfg, field, value)
    assert native.validate(cfg) == _code("RNNPOOL_ERR_SIZE_OVERFLOW")


def test_validator_accepts_the_largest_tensors():
    cfg = native.make_config(RNNPoolConfig.create(1, 1, (1, 1), "valid"), (1, 1, MAX_ELEMENTS // 4, 4))
    assert native.validate(cfg) == 0
    cfg.in_cols += 1
    assert native.validate(cfg) == _code("RNNPOOL_ERR_SIZE_OVERFLOW")


def _with(array, index, value):
    array = np.array(array, copy=True)
    array.reshape(-1)[index] = value
    return array


PARAM_FAULTS = [
    (dict(w1=None), "RNNPOOL_ERR_NULL_POINTER"),
    (dict(u2_scale=None), "RNNPOOL_ERR_NULL_POINTER"),
    (dict(scalars=None), "RNNPOOL_ERR_NULL_POINTER"),
    (dict(input_scale=0.0), "RNNPOOL_ERR_BAD_SCALE"),
    (dict(input_scale=-0.5), "RNNPOOL_ERR_BAD_SCALE"),
    (dict(output_scale=float("nan")), "RNNPOOL_ERR_BAD_SCALE"),
    (dict(output_scale=float("inf")), "RNNPOOL_ERR_BAD_SCALE"),
    (lambda p: dict(w1_scale=_with(p.w1_scale.astype(np.float32), 1, 0.0)), "RNNPOOL_ERR_BAD_SCALE"),
    (lambda p: dict(u1_scale=_with(p.u1_scale.astype(np.float32), 0, np.nan)), "RNNPOOL_ERR_BAD_SCALE"),
    (lambda p: dict(w2_scale=_with(p.w2_scale.astype(np.float32), 2, -1.0)), "RNNPOOL_ERR_BAD_SCALE"),
    (dict(input_zero_point=128), "RNNPOOL_ERR_BAD_ZERO_POINT"),
    (dict(output_zero_point=-129), "RNNPOOL_ERR_BAD_ZERO_POINT"),
    (dict(w1_scale_count=0), "RNNPOOL_ERR_BAD_SCALE_COUNT"),
    (dict(u1_scale_count=3), "RNNPOOL_ERR_BAD_SCALE_COUNT"),
    (dict(w2_scale_count=4), "RNNPOOL_ERR_BAD_SCALE_COUNT"),  # h2 = 5
    (dict(u2_scale_count=6), "RNNPOOL_ERR_BAD_SCALE_COUNT"),
    (lambda p: dict(scalars=_with(p.scalars.astype(np.int16), 0, -1)), "RNNPOOL_ERR_BAD_SCALARS"),
    (lambda p: dict(scalars=_with(p.scalars.astype(np.int16), 3, 16385)), "RNNPOOL_ERR_BAD_SCALARS"),
    (lambda p: dict(bias1=_with(p.bias1.astype(np.int32), 5, 2**24)), "RNNPOOL_ERR_BAD_BIAS"),
    (lambda p: dict(bias2=_with(p.bias2.astype(np.int32), 0, -(2**24) - 1)), "RNNPOOL_ERR_BAD_BIAS"),
    (dict(input_scale=1e30), "RNNPOOL_ERR_MULTIPLIER_RANGE"),  # s_x * s_w1 * 2^12 >= 2^30
    (dict(output_scale=1e-30), "RNNPOOL_ERR_MULTIPLIER_RANGE"),  # 2^-q2 / s_y >= 2^30
    (lambda p: dict(u1_scale=np.full(p.u1_scale.shape, 1e12, np.float32)), "RNNPOOL_ERR_MULTIPLIER_RANGE"),
]


@pytest.mark.parametrize("fault, expected", PARAM_FAULTS)
def test_validator_names_each_parameter_fault(fault, expected):
    case = _good_case()
    changes = fault(case.params) if callable(fault) else fault
    params = native.S8Params(case.params, **changes)
    cfg = native.make_config(case.params.config, case.x.shape)
    assert native.validate(cfg, params) == _code(expected)
    buffer = native.aligned_buffer(native.buffer_bytes(cfg)[0])
    status = native.library().rnnpool_s8_prepare(
        ctypes.byref(cfg), ctypes.byref(params.struct), buffer.ctypes.data, buffer.size
    )
    assert status == _code(expected)
    assert not buffer.any()  # nothing written on failure


def test_boundary_parameters_are_accepted():
    case = _good_case()
    p = case.params
    params = native.S8Params(
        p,
        input_zero_point=-128,
        output_zero_point=127,
        scalars=np.array([0, 16384, 16384, 0], np.int16),
        bias1=_with(p.bias1.astype(np.int32), 0, 2**24 - 1),
        bias2=_with(p.bias2.astype(np.int32), 1, -(2**24)),
        w1_scale=np.array([p.w1_scale[0]], np.float32),
        w1_scale_count=1,
    )
    assert native.validate(native.make_config(p.config, case.x.shape), params) == 0


@pytest.mark.parametrize(
    "fault, expected",
    [
        (dict(w2=None), "RNNPOOL_ERR_NULL_POINTER"),
        (dict(scalars=[0.5, 1.5, 0.5, 0.5]), "RNNPOOL_ERR_BAD_SCALARS"),
        (dict(scalars=[0.5, 0.5, np.nan, 0.5]), "RNNPOOL_ERR_BAD_SCALARS"),
        (dict(scalars=[-0.1, 0.5, 0.5, 0.5]), "RNNPOOL_ERR_BAD_SCALARS"),
        (dict(bias1=np.full((2, 4), np.inf)), "RNNPOOL_ERR_BAD_BIAS"),
        (dict(bias2=np.full((2, 5), np.nan)), "RNNPOOL_ERR_BAD_BIAS"),
    ],
)
def test_float_validator_names_each_parameter_fault(fault, expected):
    config = RNNPoolConfig.create((3, 2), 2, (4, 5))
    weights = RNNPoolWeights.random(3, 4, 5, np.random.default_rng(1))
    cfg = native.make_config(config, (1, 7, 6, 3))
    assert native.validate(cfg, native.F32Params(weights, **fault), "float32") == _code(expected)


def test_prepare_and_eval_check_their_buffers():
    case = _good_case()
    lib, codes = native.library(), native.status_codes()
    cfg = native.make_config(case.params.config, case.x.shape)
    params = native.S8Params(case.params)
    prepared_bytes, scratch_bytes = native.buffer_bytes(cfg)
    big = native.aligned_buffer(prepared_bytes + 8)
    prepare = lambda buf, n: lib.rnnpool_s8_prepare(
        ctypes.byref(cfg),
        ctypes.byref(params.struct),  # noqa: E731
        buf,
        n,
    )
    assert prepare(big.ctypes.data, prepared_bytes - 1) == codes["RNNPOOL_ERR_BUFFER_TOO_SMALL"]
    assert prepare(big.ctypes.data + 4, prepared_bytes) == codes["RNNPOOL_ERR_MISALIGNED"]
    assert prepare(None, prepared_bytes) == codes["RNNPOOL_ERR_NULL_POINTER"]
    assert (
        lib.rnnpool_s8_prepare(None, ctypes.byref(params.struct), big.ctypes.data, prepared_bytes)
        == codes["RNNPOOL_ERR_NULL_POINTER"]
    )
    assert (
        lib.rnnpool_s8_prepare(ctypes.byref(cfg), None, big.ctypes.data, prepared_bytes)
        == codes["RNNPOOL_ERR_NULL_POINTER"]
    )

    x = np.ascontiguousarray(case.x)
    out = np.zeros(native.output_shape(cfg), np.int8)
    scratch = native.aligned_buffer(scratch_bytes + 8)
    xp, op = native._pointer(x), native._pointer(out)
    evaluate = lambda prep, s, n: lib.rnnpool_s8_eval(prep, xp, op, s, n)  # noqa: E731
    assert evaluate(big.ctypes.data, scratch.ctypes.data, scratch_bytes) == codes["RNNPOOL_ERR_NOT_PREPARED"]
    assert prepare(big.ctypes.data, prepared_bytes) == 0
    assert evaluate(big.ctypes.data, scratch.ctypes.data, scratch_bytes - 1) == codes["RNNPOOL_ERR_BUFFER_TOO_SMALL"]
    assert evaluate(big.ctypes.data, scratch.ctypes.data + 4, scratch_bytes) == codes["RNNPOOL_ERR_MISALIGNED"]
    assert evaluate(big.ctypes.data, None, scratch_bytes) == codes["RNNPOOL_ERR_NULL_POINTER"]
    assert (
        lib.rnnpool_s8_eval(big.ctypes.data, None, op, scratch.ctypes.data, scratch_bytes)
        == codes["RNNPOOL_ERR_NULL_POINTER"]
    )
    assert not out.any()
    # A float eval on an int8 prepared buffer is refused.
    assert (
        lib.rnnpool_f32_eval(
            big.ctypes.data,
            native._pointer(x.astype(np.float32)),
            native._pointer(out.astype(np.float32)),
            scratch.ctypes.data,
            scratch_bytes,
        )
        == codes["RNNPOOL_ERR_NOT_PREPARED"]
    )
    assert evaluate(big.ctypes.data, scratch.ctypes.data, scratch_bytes) == 0
    np.testing.assert_array_equal(out, case.expected)


def test_prepared_buffer_can_be_moved():
    case = _good_case()
    kernel = native.PreparedS8(case.params, case.x.shape)
    moved = native.aligned_buffer(kernel.prepared.size)
    moved[:] = kernel.prepared
    kernel.prepared[:] = 0
    kernel.prepared = moved
    np.testing.assert_array_equal(kernel(case.x), case.expected)


def test_missing_library_is_a_clear_error(monkeypatch, tmp_path):
    import importlib.machinery

    monkeypatch.setattr(importlib.machinery, "EXTENSION_SUFFIXES", [".does-not-exist.so"])
    with pytest.raises(native.RNNPoolError, match="not built.*dev setup"):
        native.library_path()


def test_bench_host_prints_one_record_per_shape_and_activation_pair(capsys):
    import argparse
    import json

    from rnnpool_tflm.cli.commands import bench

    args = argparse.Namespace(
        what="kernel", target="host", json=True, shape=["VWW"], activations="both", seconds=0.01, rnn1_mode="cached"
    )
    assert bench.run(args) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["activations"] for r in records] == ["sigmoid/tanh", "hard_sigmoid/hard_tanh"]
    assert {r["rnn1_mode"] for r in records} == {"cached"}
    for r in records:
        assert r["shape"] == {"k": 8, "patch": 6, "stride": 4, "h1": 8, "h2": 8} and r["bit_exact"]
        assert r["macs_per_patch"] == 2 * 36 * (8 * 8 + 64) + 2 * 12 * (64 + 64) and r["ns_per_patch"] > 0
        assert (
            r["patches"] == 27 * 27
            and r["scratch_bytes"] == native.layer_buffer_bytes(RNNPoolConfig.create(6, 4, 8), (1, 112, 112, 8))[1]
        )
