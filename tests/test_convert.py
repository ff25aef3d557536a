"""Conversion to an int8 .tflite with one RNNPool custom op per layer (issue 4)."""

import pathlib
import re

import models_for_tests as mft
import numpy as np
import pytest
from flatbuffers import flexbuffers

from rnnpool_tflm.check import checker as check
from rnnpool_tflm.convert import keras_converter as convert
from rnnpool_tflm.core.contract import contract
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.layer.rnnpool import find_rnnpool_layers
from rnnpool_tflm.quantize import model as quantize
from rnnpool_tflm.tflite import model as tfm

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _rnnpool_ops(tflite: bytes):
    m = tfm.read_model(tflite)
    sg = m.subgraphs[0]
    return m, sg, [op for op in sg.operators if tfm.is_rnnpool(m, op)]


def test_acceptance_model_converts_to_one_custom_op_per_rnnpool_and_follows_the_contract():
    acc = mft.acceptance(hard=False)
    m, sg, ops = _rnnpool_ops(acc.conversion.tflite)
    assert len(ops) == 1
    c = contract()
    code = m.operatorCodes[ops[0].opcodeIndex]
    assert (tfm._text(code.customCode), code.version) == (c.custom_code, c.version)
    op = ops[0]
    assert len(op.inputs) == len(c.inputs) and len(op.outputs) == 1
    for spec, idx in zip(c.inputs, op.inputs, strict=True):
        t = sg.tensors[idx]
        assert t.type == getattr(tfm.TensorType, spec.int8_type), spec.name
    # The weights are the layer's float weights quantized by docs/quantization.md's rules, checked
    # from the floats (not through quantize_rnnpool): symmetric per output row, scale max|row| / 127,
    # each value within half a step; biases in Q12, the FastGRNN sigmoid(zeta), sigmoid(nu) in Q14.
    layer = quantize.rnnpool_wrappers(acc.qat_model)[0].layer
    floats = layer.get_rnnpool_weights()
    data = {
        spec.name: (tfm.constant_data(m, sg.tensors[idx]), sg.tensors[idx])
        for spec, idx in zip(c.inputs[1:], op.inputs[1:], strict=True)
    }
    for name, w in (("w1", floats.rnn1.w), ("u1", floats.rnn1.u), ("w2", floats.rnn2.w), ("u2", floats.rnn2.u)):
        rows = np.asarray(w, np.float64).T  # the contract's [out, in]
        q, tensor = data[name]
        scales, zps, dim = tfm.quantization(tensor)
        np.testing.assert_allclose(scales, np.abs(rows).max(axis=1) / 127, rtol=1e-6, err_msg=name)
        assert np.all(zps == 0) and dim == 0 and q.dtype == np.int8 and q.min() >= -127
        assert np.all(np.abs(q * scales[:, None].astype(np.float64) - rows) <= scales[:, None] * (0.5 + 1e-5)), name
    for name, cell in (("bias1", floats.rnn1), ("bias2", floats.rnn2)):
        want = np.stack([cell.bias_gate, cell.bias_update]).astype(np.float64)
        assert np.all(np.abs(data[name][0] / 4096.0 - want) <= 0.5 / 4096 + 1e-9), name
    sigmoid = lambda v: 1 / (1 + np.exp(-np.float64(v)))  # noqa: E731
    want = np.array([[sigmoid(cell.zeta), sigmoid(cell.nu)] for cell in (floats.rnn1, floats.rnn2)])
    assert np.all(np.abs(data["fastgrnn_scalars"][0] / 16384.0 - want) <= 0.5 / 16384 + 1e-9)
    stored = {
        "version": 1,
        "patch_rows": 8,
        "patch_cols": 8,
        "stride_rows": 4,
        "stride_cols": 4,
        "padding": 0,
        "gate_activation": 0,
        "update_activation": 0,
    }
    # Optional options at their default are not written (older kernels load the model); decoding fills them in.
    assert flexbuffers.Loads(bytes(op.customOptions)) == stored
    assert tfm.decode_options(op.customOptions) == {
        **stored,
        "output_pad_bottom": 0,
        "output_pad_right": 0,
        "rnn1_mode": 0,
    }
    # Every other op is an int8 builtin or a fused inverted-residual block; graph I/O int8.
    builtin = {tfm.opcode_name(m, o.opcodeIndex) for o in sg.operators} - {"RNNPool"}
    assert builtin <= {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "InvertedResidual"}, builtin
    convert.check_int8(m, float_io=False)
    assert all(sg.tensors[i].type == tfm.TensorType.INT8 for i in list(sg.inputs) + list(sg.outputs))
    s = acc.conversion.summary
    assert s.ops["RNNPool"] == 1 and s.model_bytes == len(acc.conversion.tflite) and s.parameters > 30000


def test_hard_model_has_float_io():
    acc = mft.acceptance(hard=True)
    m, sg, ops = _rnnpool_ops(acc.conversion.tflite)
    assert len(ops) == 1
    assert (
        tfm.decode_options(ops[0].customOptions)["gate_activation"] == contract().constants["RNNPOOL_GATE_HARD_SIGMOID"]
    )
    assert all(sg.tensors[i].type == tfm.TensorType.FLOAT32 for i in list(sg.inputs) + list(sg.outputs))
    names = [tfm.opcode_name(m, o.opcodeIndex) for o in sg.operators]
    assert names[0] == "QUANTIZE" and names[-1] == "DEQUANTIZE"
    convert.check_int8(m, float_io=True)


def test_docs_name_every_contract_input_and_option():
    text = (ROOT / "docs" / "custom_op.md").read_text()
    c = contract()
    for spec in c.inputs + c.outputs:
        assert re.search(rf"\| {spec.index} \| `{spec.name}` \| {spec.int8_type} \| {spec.float_type} \|", text), spec
    for option in c.options:
        assert re.search(rf"\| `{option.key}` \| {option.minimum} \.\. {option.maximum} \|", text), option
    assert f'`"{c.custom_code}"`' in text and f"`{c.version}`" in text


@pytest.mark.parametrize("builder", [mft.mixed_functional_model, mft.sequential_rnnpool_first, mft.two_rnnpools])
def test_float_models_convert_with_representative_data(builder):
    """Post-training quantization: RNNPool fed by the model input, RNNPool -> RNNPool, an
    RNNPool output that is also a model output; every RNNPool op bit-exact on the host."""
    model = builder()
    x = mft.random_images(model, 48)
    result = convert.convert_model(model, representative_data=x)
    assert result.summary.rnnpool_ops == len(find_rnnpool_layers(model))
    report = check.check_model(result.tflite, keras_model=model, data=([x], None), measure_arena=False)
    assert report.rnnpool_bitexact
    assert report.cosine > 0.99  # against the float model: post-training quantization error only


def test_mixed_functional_model_quantizes_and_converts():
    """Add, DepthwiseConv2D, BatchNormalization (folded), ReLU6, max/average pooling, RNNPool."""
    model = mft.mixed_functional_model()
    x = mft.random_images(model, 64)
    qat = quantize.quantize_model(model)
    quantize.calibrate_ranges(qat, x)
    result = convert.convert_model(qat)
    names = set(result.summary.ops)
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "RNNPool"} <= names, names
    assert "BATCH_NORMALIZATION" not in " ".join(names) and "MUL" not in names  # BN folded
    report = check.check_model(result.tflite, keras_model=qat, data=([x], None), measure_arena=False)
    assert report.rnnpool_bitexact and report.max_abs_err_lsb <= 2 and report.top1_agreement >= 0.95


def test_float_model_without_data_is_refused():
    with pytest.raises(RNNPoolError, match="representative data"):
        convert.convert(mft.sequential_rnnpool_first())


def test_representative_data_of_the_wrong_shape():
    model = mft.sequential_rnnpool_first()
    with pytest.raises(RNNPoolError, match="wrong shape"):
        convert.convert(model, representative_data=np.zeros((4, 8, 8, 3), np.float32))


@pytest.mark.parametrize("qat", [False, True], ids=["float_with_representative_data", "qat"])
def test_model_without_rnnpool_converts_like_any_keras_model(qat):
    """zoo:face_m4_strided_conv (no RNNPool; an IndexError before): builtin int8 ops only,
    as post-training quantization with representative data and as a QAT model."""
    from rnnpool_tflm.analysis.zoo import face_m4_strided_conv_baseline

    model = face_m4_strided_conv_baseline((32, 48, 1))
    x = mft.random_images(model, 16)
    if qat:
        model = quantize.quantize_model(model)
        quantize.calibrate_ranges(model, x)
    result = convert.convert_model(model, representative_data=None if qat else x)
    assert result.nodes == [] and result.summary.rnnpool_ops == 0
    # Its four inverted residuals become InvertedResidual ops (convert/ir_fusion.py).
    assert set(result.summary.ops) == {"CONV_2D", "InvertedResidual"}, result.summary.ops
    assert result.summary.ops["InvertedResidual"] == len(result.fusion.fused) == 4
    m = tfm.read_model(result.tflite)
    assert len(m.subgraphs[0].outputs) == 8  # the detector's loc/conf maps, in order
    convert.check_int8(m, float_io=False)
    report = check.check_model(result.tflite, keras_model=model, data=([x], None), measure_arena=False)
    if qat:  # the fake-quants are the int8 model's grids
        assert report.max_abs_err_lsb <= 2 and report.ok, report.failures
    else:  # post-training quantization error only
        assert report.cosine > 0.99
