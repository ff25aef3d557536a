"""The greedy planner re-implementation and input handling of the arena model."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnnpool_tflm.arena import estimate_arena, get_target
from rnnpool_tflm.arena.planner import Buffer, place_greedy
from rnnpool_tflm.core.errors import RNNPoolError


def _buffers(spec):
    return [Buffer("tensor", i, None, nbytes, first, last) for i, (nbytes, first, last) in enumerate(spec)]


def test_hand_worked_plan():
    # A chain a -> b -> c plus one scratch at step 2: sizes round up to 16.
    buffers = _buffers([(100, 0, 1), (200, 1, 2), (50, 2, 3), (30, 2, 2)])
    assert place_greedy(buffers) == 112 + 208
    a, b, c, s = buffers
    assert b.offset == 0  # largest first
    assert a.offset == 208  # shares step 1 with b: above it
    assert c.offset == 208  # a is dead by step 2: c reuses its place
    assert s.offset == 208 + 64  # above c (b and c occupy [0, 272) at step 2)


def test_equal_sizes_place_the_later_buffer_first():
    buffers = _buffers([(64, 0, 1), (64, 0, 1)])
    place_greedy(buffers)
    assert (buffers[1].offset, buffers[0].offset) == (0, 64)


def test_first_fitting_gap_is_used():
    # q is dead after step 3, so s (alive from step 5) fits in the gap q leaves
    # between p and r rather than on top.
    buffers = _buffers([(1024, 0, 9), (1000, 0, 3), (512, 0, 9), (496, 5, 9)])
    assert place_greedy(buffers) == 1024 + 1008 + 512
    p, q, r, s = buffers
    assert (p.offset, q.offset, r.offset) == (0, 1024, 2032)
    assert s.offset == 1024


@given(st.lists(st.tuples(st.integers(1, 5000), st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=40))
def test_plans_never_overlap_and_are_large_enough(spec):
    buffers = _buffers([(n, min(a, b), max(a, b)) for n, a, b in spec])
    size = place_greedy(buffers)
    for i, x in enumerate(buffers):
        assert x.offset >= 0 and x.offset % 16 == 0 and x.end <= size
        for y in buffers[i + 1 :]:
            if x.first <= y.last and y.first <= x.last:
                assert x.end <= y.offset or y.end <= x.offset
    busiest = max(sum(b.size for b in buffers if b.alive_at(t)) for t in range(13))
    assert busiest <= size <= sum(b.size for b in buffers)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a .tflite model"),
        (b"\x00" * 64, "not a .tflite model"),
        (b"\x10\x00\x00\x00TFL3" + b"\xff" * 40, "truncated or corrupted flatbuffer"),
    ],
)
def test_bad_models_are_rejected(data, message):
    with pytest.raises(RNNPoolError, match=message):
        estimate_arena(data, "cortex-m4")


def test_unknown_target():
    with pytest.raises(RNNPoolError, match="valid targets: x86-64, cortex-m4"):
        get_target("risc-v")
    assert get_target("M4").name == "cortex-m4" and get_target("x86_64").name == "x86-64"


def _tiny_fc_model(with_weights=True) -> bytes:
    """int8 [1, 4] -> FULLY_CONNECTED (2 units) -> int8 [1, 2], built without TensorFlow."""
    import flatbuffers
    import numpy as np
    from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

    def tensor(name, shape, buffer, scale):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, schema.TensorType.INT8, buffer
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [scale], [0]
        return t

    model = schema.ModelT()
    model.version = 3
    empty, weights = schema.BufferT(), schema.BufferT()
    weights.data = np.arange(8, dtype=np.uint8)
    model.buffers = [empty, weights]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    model.operatorCodes = [code]
    graph = schema.SubGraphT()
    graph.tensors = [tensor(b"x", [1, 4], 0, 0.1), tensor(b"w", [2, 4], 1, 0.01), tensor(b"y", [1, 2], 0, 0.2)]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, ([0, 1, -1] if with_weights else [0]), [2]
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    graph.operators, graph.inputs, graph.outputs = [op], [0], [2]
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_tiny_model_exact_on_the_host_interpreter():
    from rnnpool_tflm.arena.host import measure_host_arena

    model = _tiny_fc_model()
    estimate = estimate_arena(model, "x86-64")
    assert estimate.head_bytes == 32  # x and y, 16 bytes each, both alive at the one step
    assert (estimate.total_bytes, estimate.tail_bytes) == (
        measure_host_arena(model).total_bytes,
        measure_host_arena(model).tail_bytes,
    )


def test_operator_with_missing_tensors_is_rejected():
    with pytest.raises(RNNPoolError, match=r"operator 0 \(FULLY_CONNECTED\): its tensors"):
        estimate_arena(_tiny_fc_model(with_weights=False), "cortex-m4")
