"""Every model the toolkit writes keeps the schema's 16-byte alignment of buffer data
(issue 11: re-packing with the Python object API left buffers 4-byte aligned)."""

import builtin_models as bm
import invres_models as im
import numpy as np
import pytest
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from rnnpool_tflm.tflite import model as tfm


def data_offsets(model: bytes):
    """The file offset of every non-empty buffer's data, read with the schema's own reader."""
    base = np.frombuffer(model, np.uint8)
    root = schema.Model.GetRootAs(model, 0)
    offsets = []
    for i in range(root.BuffersLength()):
        buffer = root.Buffers(i)
        if buffer.DataLength():
            offsets.append(buffer.DataAsNumpy().ctypes.data - base.ctypes.data)
    return offsets


def _assert_aligned(model: bytes, at_least: int):
    offsets = data_offsets(model)
    assert len(offsets) >= at_least
    assert [o % 16 for o in offsets] == [0] * len(offsets), offsets


def test_the_offsets_are_read_where_the_data_is():
    """Guards the helper: the bytes at each offset are the buffer's data."""
    model = bm.conv_chain()
    m = bm.unchecked(model)
    datas = [np.asarray(b.data, np.uint8).tobytes() for b in m.buffers if b.data is not None and len(b.data)]
    offsets = data_offsets(model)
    assert [model[o : o + len(d)] for o, d in zip(offsets, datas, strict=True)] == datas


def test_write_model_aligns_buffers_of_odd_sizes():
    m = bm.unchecked(bm.conv_chain())
    sizes = [len(b.data) for b in m.buffers if b.data is not None and len(b.data)]
    assert any(s % 16 for s in sizes)  # 6-byte filters, 12-byte biases
    _assert_aligned(tfm.write_model(m), len(sizes))


def test_set_rnn1_mode_output_is_aligned():
    from test_tflite_validation import _rnnpool_case

    model, _ = _rnnpool_case()
    _assert_aligned(tfm.set_rnn1_mode(model, "recompute"), 7)


def test_a_fused_inverted_residual_model_is_aligned():
    rng = np.random.default_rng(3)
    p = im.random_params(rng, 8, 24, 8, 1, True, True, (0, 0, 0, 0))
    _assert_aligned(im.fused_model(im.unfused_model(p, (1, 6, 6, 8))), 4)


@pytest.mark.slow
def test_converted_models_are_aligned():
    import models_for_tests as mft

    from rnnpool_tflm.convert import keras_converter

    model = mft.sequential_rnnpool_first()
    x = np.random.default_rng(0).uniform(0, 1, (8, *model.input_shape[1:])).astype(np.float32)
    _assert_aligned(keras_converter.convert(model, representative_data=x), 7)
