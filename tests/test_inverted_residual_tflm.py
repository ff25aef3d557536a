"""The InvertedResidual op registered into the tflite-micro Python interpreter (needs TFLM_DIR):
a model holding the fused op gives the same bytes as the unfused model (hypothesis-drawn blocks
and blocks converted from Keras), through the host runner in both modes; and a malformed op is
rejected with the same reason by the Python validator (tflite.inverted_residual_op.decode) and by
the TFLM registration's Prepare. Runtime about 20 s once the registerer is built (first build
about 90 s on 2 cores, cached)."""

from __future__ import annotations

import os
import shutil

import invres_models as im
import numpy as np
import pytest
from flatbuffers import flexbuffers
from hypothesis import given, settings
from test_inverted_residual_reference import blocks

from rnnpool_tflm.core.contract import inverted_residual_contract
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy.host_run import run_interpreter
from rnnpool_tflm.runtime import host
from rnnpool_tflm.runtime import registerer as tflm_registerer
from rnnpool_tflm.tflite import inverted_residual_op as irop
from rnnpool_tflm.tflite import model as tfm
from rnnpool_tflm.toolchain import tflm_tree as tflm_sources


def _missing() -> str:
    if not os.environ.get(tflm_sources.TFLM_ENV):
        return "TFLM_DIR is not set (the registerer is compiled against TFLM's headers)"
    tools = [t for t in (tflm_registerer.HOST_CC, tflm_registerer.HOST_CXX) if shutil.which(t) is None]
    return f"missing {', '.join(tools)}" if tools else ""


needs_tflm = pytest.mark.skipif(bool(_missing()), reason=_missing() or "-")
pytestmark = pytest.mark.tflm


@needs_tflm
@settings(max_examples=80)
@given(blocks())
def test_the_registered_op_equals_the_unfused_graph(case):
    p, x = case
    unfused = im.unfused_model(p, x.shape)
    expected = run_interpreter(unfused, [x], 1)[0]
    np.testing.assert_array_equal(
        run_interpreter(im.fused_model(unfused), [x], 1, tflm_registerer.load_all())[0], expected
    )


@needs_tflm
@pytest.mark.parametrize(
    "rows, cols, channels, expansion, filters, stride",
    [(9, 11, 8, 2, 8, 1), (8, 10, 8, 2, 16, 2), (7, 5, 8, 1, 8, 1), (6, 8, 16, 2, 8, 1)],
)
def test_converted_blocks_fused_run_in_both_host_modes(rows, cols, channels, expansion, filters, stride):
    unfused = im.keras_block_model(rows, cols, channels, expansion, filters, stride)
    fused = im.fused_model(unfused)
    x = im.random_input(np.random.default_rng(5), (3, rows, cols, channels))
    expected = host.run(unfused, [x], mode="partitioned").outputs[0]
    for mode in ("registered", "partitioned"):
        np.testing.assert_array_equal(host.run(fused, [x], mode=mode).outputs[0], expected)


def test_partitioned_mode_runs_the_fused_op_without_tflm_dir(monkeypatch):
    monkeypatch.delenv(tflm_sources.TFLM_ENV, raising=False)
    rng = np.random.default_rng(9)
    p = im.random_params(rng, 6, 12, 6, 1, True, True)
    x = im.random_input(rng, (2, 7, 6, 6))
    unfused = im.unfused_model(p, (1, 7, 6, 6))
    result = host.run(im.fused_model(unfused), [x])
    assert result.mode == "partitioned"
    np.testing.assert_array_equal(result.outputs[0], host.run(unfused, [x]).outputs[0])


# -- one validator contract, both sides -----------------------------------------------------------


def _fused_block(residual: bool = True, expand: bool = True):
    rng = np.random.default_rng(21)
    ci = 4
    p = im.random_params(rng, ci, 8, ci if residual else 6, 1, expand, residual, (3, 3, 0, 0))
    return tfm.read_model(im.fused_model(im.unfused_model(p, (1, 5, 5, ci)))), im.random_input(rng, (1, 5, 5, ci))


def _op_tensor(m, name: str):
    sg = m.subgraphs[0]
    return sg.tensors[sg.operators[0].inputs[inverted_residual_contract().input_index(name)]]


def _set_options(m, **changes):
    op = m.subgraphs[0].operators[0]
    options = irop.decode_options(op.customOptions)
    options.update(changes)
    op.customOptions = list(flexbuffers.Dumps({k: v for k, v in options.items() if v is not None}))


def _options_bytes(m, raw: bytes):
    m.subgraphs[0].operators[0].customOptions = list(raw)


def _drop_option(m, key: str):
    op = m.subgraphs[0].operators[0]
    options = irop.decode_options(op.customOptions)
    del options[key]
    op.customOptions = list(flexbuffers.Dumps(options))


def _reshape(m, name: str, shape, dtype=np.int8):
    t = _op_tensor(m, name)
    t.shape = list(shape)
    m.buffers[t.buffer].data = np.zeros(int(np.prod(shape)), dtype).view(np.uint8)


def _scales(m, name: str, scales, zero_points=None, dim=None):
    q = _op_tensor(m, name).quantization
    q.scale = [float(s) for s in scales]
    q.zeroPoint = list(zero_points) if zero_points is not None else [0] * len(scales)
    if dim is not None:
        q.quantizedDimension = dim


def _output_scale(m, scale: float):
    sg = m.subgraphs[0]
    sg.tensors[sg.operators[0].outputs[0]].quantization.scale = [scale]


def _retype(m, name: str):
    t = _op_tensor(m, name)
    t.type = tfm.TensorType.INT8
    m.buffers[t.buffer].data = np.zeros(int(np.prod(t.shape)), np.int8).view(np.uint8)


def _variable(m, name: str):
    m.buffers[_op_tensor(m, name).buffer].data = None


def _drop_last_input(m):
    op = m.subgraphs[0].operators[0]
    op.inputs = list(op.inputs)[:-1]


def _output_shape(m):
    sg = m.subgraphs[0]
    sg.tensors[sg.operators[0].outputs[0]].shape = [1, 5, 4, 4]


# (edit, residual block?, Python validator message, TFLM Prepare message)
HOSTILE = {
    "unknown option": (
        lambda m: _set_options(m, bogus=1),
        True,
        "unknown InvertedResidual option 'bogus'",
        "bad options: unknown option 'bogus'",
    ),
    "missing option": (
        lambda m: _drop_option(m, "stride"),
        True,
        "option 'stride' is missing",
        "bad options: missing option 'stride'",
    ),
    "option out of range": (
        lambda m: _set_options(m, stride=3),
        True,
        r"option 'stride'=3 is outside \[1, 2\]",
        "bad options: option out of range: 'stride'",
    ),
    "option not an integer": (
        lambda m: _set_options(m, stride=1.5),
        True,
        "option 'stride' must be an integer",
        "bad options: option is not an integer: 'stride'",
    ),
    "options not a map": (
        lambda m: _options_bytes(m, bytes(flexbuffers.Dumps([1, 2, 3]))),
        True,
        "not a valid flexbuffer map",
        "bad options: the options are not a flexbuffer map",
    ),
    "options garbage": (
        lambda m: _options_bytes(m, b"\xff\x00\x13"),
        True,
        "not a valid flexbuffer map",
        "bad options: the options are not a valid flexbuffer",
    ),
    "expand flag vs tensors": (
        lambda m: _set_options(m, expand=0, expand_activation=0),
        True,
        "option expand disagrees with the expand_filter input",
        "option expand disagrees with the expand_filter input",
    ),
    "residual flag vs tensors": (
        lambda m: _set_options(m, residual=1),
        False,
        "option residual disagrees with the projected_quantization input",
        "option residual disagrees with the projected_quantization input",
    ),
    "5x5 depthwise kernel": (
        lambda m: _reshape(m, "depthwise_filter", (1, 5, 5, 8)),
        True,
        "only 3x3 kernels are supported",
        "only 3x3 kernels are supported",
    ),
    "expansion filter vs input": (
        lambda m: _reshape(m, "expand_filter", (8, 1, 1, 3)),
        True,
        r"'expand_filter' has shape \[8, 1, 1, 3\], the contract needs \[8, 1, 1, 4\]",
        "tensor 'expand_filter' dim 3 is 3, the contract needs 4",
    ),
    "bias length": (
        lambda m: _reshape(m, "project_bias", (3,), np.int32),
        True,
        r"'project/bias': 4 scales, but dimension 0 has 3 channels",  # the reader's quantization check
        "tensor 'project_bias' dim 0 is 3, the contract needs 4",
    ),
    "variable weights": (
        lambda m: _variable(m, "project_filter"),
        True,
        r"reads tensor #5 'project/filter', which no operator writes and which is neither a graph "
        "input nor constant",
        r"must be a constant tensor \(tensor 'project_filter'\)",
    ),
    "bias type": (
        lambda m: _retype(m, "depthwise_bias"),
        True,
        "'depthwise_bias' is INT8, the contract needs INT32",
        "'depthwise_bias' is INT8, the contract needs",
    ),
    "scale count": (
        lambda m: _scales(m, "project_filter", [0.01, 0.02]),
        True,
        "'project/filter': 2 scales, but dimension 0 has 4 channels",
        "'project_filter' has 2 scales",
    ),
    "per-channel dimension": (
        lambda m: _scales(m, "depthwise_filter", [0.01] * 8, dim=0),
        True,
        "'depthwise/filter': 8 scales, but dimension 0 has 1 channels",
        "'depthwise_filter' is quantized along dimension 0, the contract's is 3",
    ),
    "asymmetric filter": (
        lambda m: _scales(m, "expand_filter", [0.01] * 8, [1] * 8),
        True,
        "'expand_filter' must be symmetric",
        r"symmetric \(zero point 0\)",
    ),
    "carrier per channel": (
        lambda m: _scales(m, "depthwise_quantization", [0.1, 0.2], [0, 0]),
        True,
        "'depthwise/quantization': 2 scales, but dimension 0 has 1 channels",
        "per-tensor quantization",
    ),
    "ADD rescaling": (lambda m: _output_scale(m, 1e-12), True, "ADD output multiplier", "INVRES_ERR_MULTIPLIER_RANGE"),
    "input count": (_drop_last_input, True, "needs 10 inputs and 1 output, has 9", "needs 10 inputs, has 9"),
    "output shape": (_output_shape, True, r"'output' has shape \[1, 5, 4, 4\]", r"the options give an output of"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_python_validator_rejects_a_malformed_op(case):
    edit, residual, python_message, _ = HOSTILE[case]
    m, _ = _fused_block(residual)
    edit(m)
    with pytest.raises(tfm.ModelError, match=python_message):
        tfm.validate_model(tfm.read_model(tfm.write_model(m)))


@needs_tflm
@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_tflm_registration_rejects_the_same_op(case):
    edit, residual, _, tflm_message = HOSTILE[case]
    m, x = _fused_block(residual)
    edit(m)
    with pytest.raises(RNNPoolError, match=f"InvertedResidual: .*{tflm_message}"):
        run_interpreter(tfm.write_model(m), [x], 1, tflm_registerer.load_all())


@needs_tflm
def test_the_unedited_block_passes_both():
    for residual in (True, False):
        m, x = _fused_block(residual)
        tfm.validate_model(m)
        run_interpreter(tfm.write_model(m), [x], 1, tflm_registerer.load_all())


# -- the firmware ----------------------------------------------------------------------------------


def test_the_firmware_registers_the_op():
    from rnnpool_tflm.deploy import sources as firmware_sources
    from rnnpool_tflm.tflite import model_info

    info = model_info.ModelInfo(("CONV_2D", "InvertedResidual", "RNNPool"), (), (), 4, ("InvertedResidual", "RNNPool"))
    header = firmware_sources._ops_header(info)
    assert '#include "inverted_residual_tflm.h"' in header and '#include "rnnpool_tflm.h"' in header
    assert "tflite::Register_INVERTED_RESIDUAL()" in header and "AddCustom(INVRES_CUSTOM_CODE" in header
    model_info.check_ops_supported(info, None)  # both custom ops are the firmware's


@needs_tflm
@pytest.mark.slow
def test_fused_and_unfused_models_give_the_same_bytes_on_the_emulated_m4(tmp_path):
    from rnnpool_tflm.deploy import build, emulate

    if build.missing_tools() or shutil.which(emulate.QEMU) is None:
        pytest.skip("the Arm toolchain or QEMU is missing")
    unfused = im.keras_block_model(12, 16, 16, 2, 16, 1)  # residual; CMSIS-NN kernels in the firmware
    paths = {}
    for name, data in (("unfused", unfused), ("fused", im.fused_model(unfused))):
        paths[name] = tmp_path / f"{name}.tflite"
        paths[name].write_bytes(data)
    runs = {name: emulate.emulate_model(path, timeout=300) for name, path in paths.items()}
    for name, run in runs.items():
        assert run.output_matches_host, (name, run.run.output[-2000:])
    assert runs["fused"].run.values["output_fnv1a"] == runs["unfused"].run.values["output_fnv1a"]
    assert runs["fused"].generated.manifest["ops"] == ["InvertedResidual"]
    # The fused op holds no expanded map: its arena is below the unfused plan's.
    assert runs["fused"].arena_used_bytes < runs["unfused"].arena_used_bytes
    # Instructions per operator (the firmware's OpProfiler): every operator, summing to the Invoke's.
    for name, ops in (("unfused", ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD"]), ("fused", ["InvertedResidual"])):
        report = runs[name].as_dict()
        assert [o["op"] for o in report["op_instructions"]] == ops
        total = sum(o["instructions"] for o in report["op_instructions"])
        assert 0.99 * report["instructions"] < total <= report["instructions"]


def test_emulate_reads_the_instructions_of_every_operator():
    from rnnpool_tflm.deploy.emulate import FirmwareRun, parse_output

    text = (
        "calibration_instructions: 400000\ncalibration_ticks: 200000\ninvoke_ticks: 1000\n"
        "op_ticks: 0 CONV_2D 300\nop_ticks: 1 InvertedResidual 650\nop_ticks: 2 ADD 7\n"
    )
    run = FirmwareRun(0, text, parse_output(text))
    assert run.instructions == 2000
    assert run.op_instructions() == [
        {"index": 0, "op": "CONV_2D", "instructions": 600},
        {"index": 1, "op": "InvertedResidual", "instructions": 1300},
        {"index": 2, "op": "ADD", "instructions": 14},
    ]
    assert FirmwareRun(0, "cycles: 5\nop_ticks: 0 ADD 3\n", parse_output("cycles: 5\n")).op_instructions() is None
