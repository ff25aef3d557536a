"""The RNNPool op registered into the tflite-micro Python interpreter (needs TFLM_DIR).

The registerer library is compiled against TFLM's headers on first use and cached
(about 25 s on 2 cores the first time, then under a second). Models are built with
the flatbuffer schema from golden quantized parameters (tests/firmware_models.py).
Runtime about 15 s once built.
"""

from __future__ import annotations

import os
import shutil

import firmware_models
import numpy as np
import pytest
from flatbuffers import flexbuffers

from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.deploy.host_run import run_interpreter
from rnnpool_tflm.reference import quantize_rnnpool, rnnpool_float, rnnpool_int8
from rnnpool_tflm.runtime import registerer as tflm_registerer
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources


def _missing() -> str:
    if not os.environ.get(tflm_sources.TFLM_ENV):
        return "TFLM_DIR is not set (the registerer is compiled against TFLM's headers)"
    tools = [t for t in (tflm_registerer.HOST_CC, tflm_registerer.HOST_CXX) if shutil.which(t) is None]
    return f"missing {', '.join(tools)}" if tools else ""


needs_tflm = pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")
pytestmark = pytest.mark.tflm

GOOD_OPTIONS = dict(
    version=1,
    patch_rows=4,
    patch_cols=4,
    stride_rows=2,
    stride_cols=2,
    padding=0,
    gate_activation=0,
    update_activation=0,
)


def _case(
    seed,
    patch=(4, 4),
    strides=(2, 2),
    hidden=(8, 6),
    channels=5,
    shape=(1, 10, 9, 5),
    padding="valid",
    gate="sigmoid",
    update="tanh",
    per_channel=True,
    zeta=100.0,
    nu=-100.0,
    output_padding=(0, 0),
    rnn1_mode="cached",
):
    rng = np.random.default_rng(seed)
    config = RNNPoolConfig.create(patch, strides, hidden, padding, gate, update, output_padding, rnn1_mode)
    weights = RNNPoolWeights.random(channels, hidden[0], hidden[1], rng, zeta=zeta, nu=nu)
    params = quantize_rnnpool(
        weights, config, 0.02, int(rng.integers(-20, 20)), 0.015, int(rng.integers(-20, 20)), per_channel=per_channel
    )
    x = rng.integers(-128, 128, size=shape).astype(np.int8)
    return params, x


def test_load_without_tflm_dir_names_it(monkeypatch):
    monkeypatch.delenv(tflm_sources.TFLM_ENV, raising=False)
    with pytest.raises(RNNPoolError, match="TFLM_DIR is not set"):
        tflm_registerer.load()


@needs_tflm
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(per_channel=False, padding="same", shape=(2, 7, 11, 5), gate="hard_sigmoid", update="hard_tanh"),
        dict(patch=(3, 5), strides=(4, 1), hidden=(16, 16), channels=12, shape=(1, 12, 13, 12), zeta=1.5, nu=-0.5),
        dict(output_padding=(1, 1), shape=(2, 10, 9, 5)),
        dict(output_padding=(3, 0), padding="same"),
        dict(rnn1_mode="recompute", output_padding=(1, 1), shape=(2, 11, 10, 5)),
    ],
)
def test_int8_op_in_the_interpreter_is_bit_exact_with_the_golden_reference(kwargs):
    params, x = _case(11, **kwargs)
    model = firmware_models.rnnpool_model(params, x.shape)
    out = run_interpreter(model, [x], 1, [tflm_registerer.load()])[0]
    golden = rnnpool_int8(x, params)
    assert out.dtype == np.int8 and out.shape == golden.shape
    np.testing.assert_array_equal(out, golden)


@needs_tflm
def test_float_op_in_the_interpreter_follows_the_float_reference():
    rng = np.random.default_rng(5)
    config = RNNPoolConfig.create(
        (4, 5), (2, 3), (8, 6), padding="same", gate_activation="hard_sigmoid", output_padding=(1, 2)
    )
    weights = RNNPoolWeights.random(5, 8, 6, rng, zeta=1.0, nu=-2.0)
    x = rng.standard_normal((2, 9, 11, 5)).astype(np.float32)
    out = run_interpreter(
        firmware_models.rnnpool_float_model(weights, config, x.shape), [x], 1, [tflm_registerer.load()]
    )[0]
    np.testing.assert_allclose(out, rnnpool_float(x, weights, config), atol=1e-5)


@needs_tflm
@pytest.mark.parametrize(
    "options, message",
    [
        ({k: v for k, v in GOOD_OPTIONS.items() if k != "padding"}, "missing option 'padding'"),
        ({**GOOD_OPTIONS, "dilation": 2}, "unknown option 'dilation'"),
        ({**GOOD_OPTIONS, "stride_cols": 0}, "option out of range: 'stride_cols'"),
        ({**GOOD_OPTIONS, "padding": 2}, "option out of range: 'padding'"),
        ({**GOOD_OPTIONS, "version": 2}, "option out of range: 'version'"),
        ({**GOOD_OPTIONS, "output_pad_bottom": 5}, "option out of range: 'output_pad_bottom'"),
        ({**GOOD_OPTIONS, "rnn1_mode": 2}, "option out of range: 'rnn1_mode'"),
        ({**GOOD_OPTIONS, "output_pad_right": 1}, "tensor 'output' dim 2 is 3, the contract needs 4"),
        ({**GOOD_OPTIONS, "patch_rows": 1.0}, "option is not an integer: 'patch_rows'"),
        ({**GOOD_OPTIONS, "patch_rows": 40}, "patch larger than the input"),
        (b"\x05\x07junk", "the options are not a valid flexbuffer"),
        (b"", "the op has no options"),
        ([1, 2, 3], "the options are not a flexbuffer map"),
    ],
)
def test_bad_options_are_rejected_with_a_message(options, message):
    params, x = _case(3)
    raw = options if isinstance(options, bytes) else bytes(flexbuffers.Dumps(options))
    model = firmware_models.rnnpool_model(params, x.shape, raw)
    with pytest.raises(RNNPoolError, match=f"RNNPool: .*{message}"):
        run_interpreter(model, [x], 1, [tflm_registerer.load()])


@needs_tflm
def test_tensors_inconsistent_with_the_contract_are_rejected():
    params, x = _case(4)
    name = tflm_registerer.load()
    # w1 with the wrong channel count for the input.
    bad = params.__class__(**{**params.__dict__, "w1": params.w1[:, :3], "w1_scale": params.w1_scale})
    with pytest.raises(RNNPoolError, match=r"RNNPool: tensor 'w1' dim 1 is 3, the contract needs 5"):
        run_interpreter(firmware_models.rnnpool_model(bad, x.shape), [x], 1, [name])
    # A per-channel scale count that is neither 1 nor the rows.
    bad = params.__class__(**{**params.__dict__, "u2_scale": params.u2_scale[:2]})
    with pytest.raises(RNNPoolError, match=r"RNNPool: tensor 'u2' has 2 scales; needs 1 or one per row \(6\)"):
        run_interpreter(firmware_models.rnnpool_model(bad, x.shape), [x], 1, [name])
    # A scale the kernel's validator refuses.
    bad = params.__class__(**{**params.__dict__, "output_scale": np.float32(0.0)})
    with pytest.raises(RNNPoolError, match=r"RNNPool: invalid int8 parameters: .*RNNPOOL_ERR_BAD_SCALE"):
        run_interpreter(firmware_models.rnnpool_model(bad, x.shape), [x], 1, [name])


@needs_tflm
def test_the_library_exports_only_the_registerers():
    import subprocess

    lib = tflm_registerer.build()
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True, check=True)
    assert sorted(line.split()[-1] for line in symbols.stdout.splitlines()) == sorted(tflm_registerer.SYMBOLS)
    assert tflm_registerer.SYMBOL in tflm_registerer.SYMBOLS
