"""The InvertedResidual op's NumPy reference (rnnpool_tflm.reference.inverted_residual) against
the unfused block run in the tflite-micro interpreter (TFLM's reference int8 kernels): byte for
byte, over hypothesis-drawn shapes, strides, expansions, activations, residuals and batches, and
on blocks converted from Keras by the TF converter. Also TFLM's arithmetic primitives on
hand-worked values and the contract header parser. Runtime about 25 s."""

from __future__ import annotations

import re

import invres_models as im
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnpool_tflm.core import contract as contract_module
from rnnpool_tflm.core.contract import contract, inverted_residual_contract, parse_contract
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy.host_run import run_interpreter
from rnnpool_tflm.reference import tflm_int8 as ti
from rnnpool_tflm.reference.inverted_residual import geometry, inverted_residual_int8
from rnnpool_tflm.tflite import inverted_residual_op as irop
from rnnpool_tflm.tflite import model as tfm

DOCS = __import__("pathlib").Path(__file__).resolve().parents[1] / "docs" / "inverted_residual.md"


# -- the contract header ------------------------------------------------------------------------


def test_the_contract_header_parses_with_the_shared_parser():
    c = inverted_residual_contract()
    assert c.custom_code == "InvertedResidual" and c.version == 1
    assert [s.name for s in c.inputs] == [
        "input",
        "expand_filter",
        "expand_bias",
        "expanded_quantization",
        "depthwise_filter",
        "depthwise_bias",
        "depthwise_quantization",
        "project_filter",
        "project_bias",
        "projected_quantization",
    ]
    assert [s.name for s in c.inputs if s.optional] == [
        "expand_filter",
        "expand_bias",
        "expanded_quantization",
        "depthwise_bias",
        "project_bias",
        "projected_quantization",
    ]
    assert {s.float_type for s in c.inputs} == {"NONE"}
    assert [(o.key, o.minimum, o.maximum) for o in c.options][:2] == [("version", 1, 1), ("stride", 1, 2)]
    assert c.constants["INVRES_MAX_CHANNELS"] == 4096 and c.constants["INVRES_ACTIVATION_RELU6"] == 3
    # The RNNPool contract still parses through the same code, every input required.
    r = contract()
    assert r.custom_code == "RNNPool" and not any(s.optional for s in r.inputs)
    assert contract_module.contract_for_code("InvertedResidual") is c
    assert contract_module.contract_for_code("Nope") is None


def test_the_docs_name_every_input_and_option():
    text = DOCS.read_text()
    c = inverted_residual_contract()
    for spec in (*c.inputs, *c.outputs):
        assert f"`{spec.name}`" in text, spec.name
    for option in c.options:
        assert f"| `{option.key}` | {option.minimum} .. {option.maximum} |" in text, option.key


def test_a_malformed_header_fails_loudly():
    text = (
        contract_module.native_sources.source_dir("inverted_residual")
        .joinpath("inverted_residual_op_contract.h")
        .read_text()
    )
    broken = text.replace('X(DEPTHWISE_BIAS, 5,', 'X(DEPTHWISE_BIAS, 15,')
    with pytest.raises(RuntimeError, match="INVRES_INPUTS does not list indices 0..9"):
        parse_contract(broken, "INVRES", "h.h")
    with pytest.raises(RuntimeError, match="INVRES_NUM_OPTIONS is not defined"):
        parse_contract(re.sub(r"#define INVRES_NUM_OPTIONS \d+", "", text), "INVRES", "h.h")
    with pytest.raises(ValueError, match="InvertedResidual option 'stride'=3 is outside"):
        inverted_residual_contract().check_options(
            {**{o.key: o.minimum for o in inverted_residual_contract().options}, "stride": 3}
        )


# -- TFLM's primitives on hand-worked values ----------------------------------------------------------


def test_rounding_divide_by_pot_rounds_half_away_from_zero():
    x = np.array([5, -5, 6, -6, 7, -7, 4, -4, 0, -1])
    assert ti.rounding_divide_by_pot(x, 1).tolist() == [3, -3, 3, -3, 4, -4, 2, -2, 0, -1]
    assert ti.rounding_divide_by_pot(x, 0).tolist() == x.tolist()
    assert ti.rounding_divide_by_pot(np.array([-2, -3, 2, 3]), 2).tolist() == [-1, -1, 1, 1]


def test_srdhm_rounds_half_up_and_saturates_only_at_int32_min_squared():
    half = 1 << 30  # a * b = 2^30 * odd: exactly half an output step
    assert ti.saturating_rounding_doubling_high_mul(np.array([1, -1, 3, -3]), half).tolist() == [1, 0, 2, -1]
    assert ti.saturating_rounding_doubling_high_mul(-(1 << 31), -(1 << 31)) == (1 << 31) - 1


def test_mbqm_double_rounding_differs_from_single_rounding():
    # x * M / 2^31 = 2.5 exactly, then / 2^1: double rounding gives round(round(2.5) / 2) = round(1.5) = 2,
    # single rounding round(2.5 / 2) = round(1.25) = 1.
    assert ti.multiply_by_quantized_multiplier(5, 1 << 30, -1) == 2
    # -2.5: SRDHM rounds half up to -2, then -2 / 2 = -1 exactly.
    assert ti.multiply_by_quantized_multiplier(-5, 1 << 30, -1) == -1
    # -3.5 -> -3, then -1.5 rounds away from zero to -2.
    assert ti.multiply_by_quantized_multiplier(-7, 1 << 30, -1) == -2
    # A left shift (multiplier >= 1): x * 2 then SRDHM by 2^30 (0.5).
    assert ti.multiply_by_quantized_multiplier(7, 1 << 30, 1) == 7


def test_activation_range_follows_calculate_activation_range_quantized():
    assert ti.activation_range(ti.ACTIVATION_RELU6, np.float32(6 / 255), -128) == (-128, 127)
    assert ti.activation_range(ti.ACTIVATION_RELU6, np.float32(0.05), -10) == (-10, 110)
    assert ti.activation_range(ti.ACTIVATION_RELU, np.float32(0.05), 3) == (3, 127)
    assert ti.activation_range(ti.ACTIVATION_RELU_N1_TO_1, np.float32(0.1), 0) == (-10, 10)
    assert ti.activation_range(ti.ACTIVATION_NONE, np.float32(0.1), 50) == (-128, 127)
    # 6 / 0.04 = 150.00000596 in float32 division: rounds to 150, then + zp.
    assert ti.activation_range(ti.ACTIVATION_RELU6, np.float32(0.04), -100) == (-100, 50)
    with pytest.raises(ti.InvalidQuantization, match="out of range"):
        ti.activation_range(ti.ACTIVATION_RELU6, np.float32(1e-12), 0)


def test_add_params_follow_calculate_op_data_add():
    p = ti.AddParams.create((0.5, 1), (0.25, -2), (1.0, 3), ti.ACTIVATION_NONE)
    # m1 = 0.5 / 1.0 -> (2^30, 0); m2 = 0.25 / 1.0 -> (2^30, -1); mo = 1 / 2^20 -> (2^30, -19).
    assert (p.input1_multiplier, p.input1_shift, p.input2_multiplier, p.input2_shift) == (1 << 30, 0, 1 << 30, -1)
    assert (p.output_multiplier, p.output_shift, p.input1_offset, p.input2_offset, p.output_offset) == (
        1 << 30,
        -19,
        -1,
        2,
        3,
    )
    # x = 5 -> (5 - 1) * 0.5 = 2.0; p = 2 -> (2 + 2) * 0.25 = 1.0; y = 3.0 / 1.0 + 3 = 6.
    assert p(np.array([5]), np.array([2])).tolist() == [6]
    with pytest.raises(ti.InvalidQuantization, match="ADD output multiplier"):
        ti.AddParams.create((0.5, 0), (0.5, 0), (1e-7, 0), ti.ACTIVATION_NONE)


def test_geometry_is_tflite_same():
    assert geometry(30, 40, 1) == (30, 40, 1, 1)
    assert geometry(30, 40, 2) == (15, 20, 0, 0)  # total padding 1: all of it at the bottom/right
    assert geometry(7, 1, 2) == (4, 1, 1, 1)  # total padding 2
    assert geometry(1, 1, 1) == (1, 1, 1, 1)


# -- the reference against the interpreter -----------------------------------------------------------


@st.composite
def blocks(draw):
    stride = draw(st.sampled_from([1, 2]))
    expand = draw(st.booleans())
    ci = draw(st.integers(1, 12))
    residual = stride == 1 and draw(st.booleans())
    co = ci if residual else draw(st.integers(1, 12))
    ce = draw(st.integers(1, 24)) if expand else ci
    acts = draw(st.tuples(*(st.integers(0, 3) for _ in range(4))))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9)), ci)
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
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
        gain=draw(st.floats(0.2, 4.0)),
    )
    return p, im.random_input(rng, shape)


@settings(max_examples=250)
@given(blocks())
def test_the_reference_equals_the_unfused_graph_in_tflm(case):
    p, x = case
    got = run_interpreter(im.unfused_model(p, x.shape), [x], 1)[0]
    np.testing.assert_array_equal(inverted_residual_int8(x, p), got)


def test_the_random_blocks_exercise_the_whole_int8_range():
    """Guards the test above against drawing blocks whose outputs are all clamped."""
    rng = np.random.default_rng(3)
    p = im.random_params(rng, 8, 24, 8, 1, True, True, (0, 0, 0, 0))
    y = inverted_residual_int8(im.random_input(rng, (1, 12, 12, 8)), p)
    assert np.unique(y).size > 100


def _decoded(model: bytes):
    m = tfm.read_model(model)
    return irop.decode(m, 0, 0).params


@pytest.mark.parametrize(
    "rows, cols, channels, expansion, filters, stride",
    [
        (9, 11, 8, 2, 8, 1),  # residual
        (8, 10, 8, 2, 16, 2),  # stride 2, even map
        (7, 5, 8, 1, 8, 1),  # t = 1: no expansion conv, residual
        (6, 8, 16, 2, 8, 1),  # Face-M4 block 1's pattern (no residual: 64 -> 32)
    ],
)
def test_converted_keras_blocks_fuse_and_the_reference_equals_tflm(rows, cols, channels, expansion, filters, stride):
    unfused = im.keras_block_model(rows, cols, channels, expansion, filters, stride)
    m = tfm.read_model(unfused)
    names = [tfm.opcode_name(m, op.opcodeIndex) for op in m.subgraphs[0].operators]
    assert names == (["CONV_2D"] if expansion > 1 else []) + ["DEPTHWISE_CONV_2D", "CONV_2D"] + (
        ["ADD"] if stride == 1 and channels == filters else []
    )
    fused = im.fused_model(unfused)
    fm = tfm.read_model(fused)
    assert [tfm.opcode_name(fm, op.opcodeIndex) for op in fm.subgraphs[0].operators] == ["InvertedResidual"]
    params = _decoded(fused)
    assert (params.expand is not None) == (expansion > 1) and params.residual == (names[-1] == "ADD")
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = im.random_input(rng, (1, rows, cols, channels))
        np.testing.assert_array_equal(inverted_residual_int8(x, params), run_interpreter(unfused, [x], 1)[0])


def test_fusing_keeps_weights_and_quantizations_bit_identical():
    unfused = im.keras_block_model(9, 11, 8, 2, 8, 1)
    m = tfm.read_model(unfused)
    sg = m.subgraphs[0]
    expand, dw, project, add = sg.operators
    fused = tfm.read_model(im.fused_model(unfused))
    fsg = fused.subgraphs[0]
    op = fsg.operators[0]
    c = inverted_residual_contract()

    def same(original: int, fused_index: int):
        a, b = sg.tensors[original], fsg.tensors[op.inputs[c.input_index(fused_index)]]
        assert tfm.quantization(a)[0].tobytes() == tfm.quantization(b)[0].tobytes()
        assert tfm.quantization(a)[1].tolist() == tfm.quantization(b)[1].tolist()
        return a, b

    for original, name in (
        (expand.inputs[1], "expand_filter"),
        (dw.inputs[1], "depthwise_filter"),
        (project.inputs[1], "project_filter"),
        (expand.inputs[2], "expand_bias"),
    ):
        a, b = same(original, name)
        assert tfm.constant_data(m, a).tobytes() == tfm.constant_data(fused, b).tobytes()
    same(expand.outputs[0], "expanded_quantization")
    same(dw.outputs[0], "depthwise_quantization")
    same(project.outputs[0], "projected_quantization")
    # No intermediate activation tensor is left: the op's only non-constant tensors are input and output.
    variable = [i for i, t in enumerate(fsg.tensors) if tfm.constant_data(fused, t) is None]
    assert sorted(variable) == sorted([op.inputs[0], op.outputs[0]])


def test_the_reference_rejects_a_wrong_input():
    p = im.random_params(np.random.default_rng(0), 4, 8, 4, 1)
    with pytest.raises(RNNPoolError, match="3 channels, the op expects 4"):
        inverted_residual_int8(np.zeros((1, 3, 3, 3), np.int8), p)
    with pytest.raises(RNNPoolError, match="int8 NHWC"):
        inverted_residual_int8(np.zeros((3, 3, 4), np.int8), p)
