"""The firmware's narrow CONV_2D kernel (custom_ops/conv) against TFLM's CONV_2D, byte for byte:
its portable C path on the host against the tflite-micro interpreter, and (slow, TFLM_DIR) its
Cortex-M4 path inside the emulated firmware, where it replaces CMSIS-NN's kernel for narrow
convolutions and hands the others to it."""

from __future__ import annotations

import numpy as np
import pytest
from conv_models import ConvCase, conv_model, random_inputs
from test_firmware_emulate import needs_firmware

from rnnpool_tflm.reference.quant_params import quantize_multiplier, round_half_away
from rnnpool_tflm.runtime import host
from rnnpool_tflm.runtime import narrow_conv_native as narrow

CASES = [
    ConvCase((24, 32), 1, 4, stride=2, activation="relu6"),  # Face-M4's stem, smaller
    ConvCase((11, 13), 1, 3, seed=1),  # a 3x3 stem of odd width, stride 1, three filters
    ConvCase((9, 10), 32, 4, seed=2),  # a Face-M4 head
    ConvCase((6, 7), 64, 2, seed=3),
    ConvCase((9, 7), 3, 8, stride=2, same=False, seed=4),  # channels not a multiple of 4, VALID
    ConvCase((6, 5), 8, 1, kernel=(1, 1), seed=5),
    ConvCase((7, 9), 4, 5, kernel=(5, 3), stride=2, activation="relu6", per_channel=False, bias=False, seed=6),
    ConvCase((5, 6), 12, 7, kernel=(2, 2), stride=2, seed=7),  # even kernel: padding only after
]
TOO_WIDE = ConvCase((5, 5), 8, 9, seed=8)  # more filters than the narrow kernel takes: CMSIS-NN's


def _activation_range(case: ConvCase, scale: float, zero_point: int):
    """CalculateActivationRangeQuantized for int8 (float32 division, TfLiteRound)."""
    if case.activation == "none":
        return -128, 127
    q = lambda f: zero_point + int(round_half_away(np.float32(f) / np.float32(scale)))  # noqa: E731
    return max(-128, q(0.0)), min(127, q(6.0))


def _narrow(built, x):
    case = built.case
    quant = [
        quantize_multiplier(float(np.float32(built.input_scale)) * float(s) / float(np.float32(built.output_scale)))
        for s in built.filter_scales
    ]
    return narrow.conv_s8(
        x,
        built.filter,
        built.bias,
        [m for m, _ in quant],
        [n for _, n in quant],
        input_zero_point=built.input_zero_point,
        output_zero_point=built.output_zero_point,
        stride=(case.stride, case.stride),
        padding=case.leading_padding(),
        activation=_activation_range(case, built.output_scale, built.output_zero_point),
        output_hw=case.output_hw(),
    )


def test_narrow_conv_equals_tflm_conv_on_the_host():
    model, built, keys = conv_model(CASES)
    for seed in (1, 2):
        inputs = random_inputs(keys, seed)
        expected = host.run(model, inputs).outputs
        by_key = dict(zip(keys, inputs, strict=True))
        for b, want in zip(built, expected, strict=True):
            got = _narrow(b, by_key[(*b.case.input_hw, b.case.channels)])
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want, err_msg=str(b.case))
        assert any(np.unique(w).size > 16 for w in expected)  # the outputs are not saturated constants


def test_narrow_conv_refuses_what_it_does_not_take():
    _, (wide,), keys = conv_model([TOO_WIDE])
    x = random_inputs(keys)[0]
    with pytest.raises(narrow.NarrowConvError, match="more output channels"):
        _narrow(wide, x)
    _, (ok,), keys = conv_model([CASES[2]])
    x = random_inputs(keys)[0]
    bad_shift = dict(
        input_zero_point=0,
        output_zero_point=0,
        stride=(1, 1),
        padding=(1, 1),
        activation=(-128, 127),
        output_hw=(9, 10),
    )
    with pytest.raises(narrow.NarrowConvError, match="shift"):
        narrow.conv_s8(x, ok.filter, ok.bias, [1 << 30] * 4, [31] * 4, **bad_shift)
    with pytest.raises(narrow.NarrowConvError, match="stride"):
        narrow.conv_s8(x, ok.filter, ok.bias, [1 << 30] * 4, [-1] * 4, **{**bad_shift, "stride": (0, 1)})
    with pytest.raises(narrow.NarrowConvError, match="shapes disagree"):
        narrow.conv_s8(x[..., :16], ok.filter, ok.bias, [1 << 30] * 4, [-1] * 4, **bad_shift)
    with pytest.raises(narrow.NarrowConvError, match="activation bound"):
        narrow.conv_s8(x, ok.filter, ok.bias, [1 << 30] * 4, [-1] * 4, **{**bad_shift, "activation": (5, 4)})


@needs_firmware
@pytest.mark.slow
@pytest.mark.tflm
def test_narrow_conv_in_the_emulated_firmware_equals_the_host(tmp_path):
    from rnnpool_tflm.deploy import emulate

    model, _, keys = conv_model([*CASES, TOO_WIDE])
    path = tmp_path / "convs.tflite"
    path.write_bytes(model)
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, *random_inputs(keys, 3))
    result = emulate.emulate_model(path, inputs, keep_dir=tmp_path / "fw")
    assert result.output_matches_host
    ops = (tmp_path / "fw" / "generated" / "model_ops.h").read_text()
    assert "AddConv2D(tflite::Register_CONV_2D_NARROW())" in ops
