"""Running converted models on the host: partitioned (tflite-micro segments + C kernel)
and registered (the op inside tflite-micro, needs TFLM_DIR) (issue 4)."""

import os

import models_for_tests as mft
import numpy as np
import pytest

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.reference import rnnpool_int8
from rnnpool_tflm.runtime import host as host_runtime
from rnnpool_tflm.tflite import model as tfm


def _inputs(model: host_runtime.HostModel, n: int = 40):
    _, _, xv, _ = mft.line_data()
    return [host_runtime.quantize_inputs(model.input_details[0], xv[:n])]


def test_partitioned_run_cuts_at_each_rnnpool_and_matches_the_golden_op():
    acc = mft.acceptance(False)
    model = host_runtime.HostModel(acc.conversion.tflite, "partitioned")
    kinds = [kind for kind, _ in model._steps]
    # builtin segments around each custom op: the RNNPool op, then the fused inverted-residual
    # blocks (the converter's default) as their own steps
    ops = acc.conversion.summary.ops
    assert kinds[:2] == ["segment", "rnnpool"] and kinds[-1] == "segment"
    assert kinds.count("rnnpool") == ops["RNNPool"] == 1
    assert kinds.count("fused") == ops.get("InvertedResidual", 0)
    assert set(kinds) <= {"segment", "rnnpool", "fused"}
    for kind, step in model._steps:
        if kind == "segment":  # a valid .tflite of builtin ops only
            seg = tfm.read_model(step.model)
            assert not tfm.validate_model(seg) and seg.subgraphs[0].operators
    result = model.run(_inputs(model))
    (trace,) = result.rnnpool
    assert trace.inputs.shape == (40, 16, 16, 8) and trace.outputs.shape == (40, 3, 3, 64)
    assert trace.inputs.dtype == np.int8 and trace.outputs.dtype == np.int8
    np.testing.assert_array_equal(rnnpool_int8(trace.inputs, trace.node.params), trace.outputs)
    assert result.outputs[0].shape == (40, 4) and result.outputs[0].dtype == np.int8
    # Deterministic, and independent of the batch it is run in.
    again = model.run([_inputs(model)[0][:7]])
    np.testing.assert_array_equal(again.outputs[0], result.outputs[0][:7])


def test_float_io_model_runs_on_float_data():
    acc = mft.acceptance(True)
    model = host_runtime.HostModel(acc.conversion.tflite, "partitioned")
    assert model.input_details[0]["dtype"] == np.float32 and model.output_details[0]["dtype"] == np.float32
    _, _, xv, yv = mft.line_data()
    result = model.run([xv[:64]])
    assert np.mean(result.outputs[0].argmax(1) == yv[:64]) > 0.9


def test_bad_inputs_are_named():
    model = host_runtime.HostModel(mft.acceptance(False).conversion.tflite, "partitioned")
    with pytest.raises(RNNPoolError, match="wrong shape"):
        model.run([np.zeros((2, 30, 30, 1), np.int8)])
    with pytest.raises(RNNPoolError, match="int8"):
        model.run([np.zeros((2, 32, 32, 1), np.float32)])
    with pytest.raises(RNNPoolError, match="2 arrays"):
        model.run([np.zeros((2, 32, 32, 1), np.int8)] * 2)


@pytest.mark.tflm
@pytest.mark.skipif(not os.environ.get("TFLM_DIR"), reason="TFLM_DIR is not set: the registerer needs TFLM sources")
@pytest.mark.parametrize("hard", [False, True])
def test_registered_and_partitioned_runs_are_identical(hard):
    tflite = mft.acceptance(hard).conversion.tflite
    partitioned = host_runtime.HostModel(tflite, "partitioned")
    registered = host_runtime.HostModel(tflite, "registered")
    inputs = [host_runtime.quantize_inputs(partitioned.input_details[0], mft.line_data()[2][:50])]
    a, b = partitioned.run(inputs), registered.run(inputs)
    for x, y in zip(a.outputs, b.outputs, strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.rnnpool, b.rnnpool, strict=True):
        np.testing.assert_array_equal(x.inputs, y.inputs)
        np.testing.assert_array_equal(x.outputs, y.outputs)
