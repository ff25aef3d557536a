"""The x86-64 arena model against the tflite-micro Python interpreter: exact equality.

For every model the estimate must reproduce what the interpreter's
RecordingMicroAllocator reports (total, head and tail bytes) and the smallest arena
AllocateTensors accepts (found by bisection in forked children). Runtime: about 15 s,
most of it the TF converter building the seven models.
"""

import itertools

import pytest
from arena_models import builtin_models, convert, tanh_model

from rnnpool_tflm.arena import arena_report, estimate_arena
from rnnpool_tflm.arena.graph import read_graph
from rnnpool_tflm.arena.host import measure_host_arena, smallest_host_arena

MODELS = ["mobilenet_like_32", "mobilenet_like_48_float_io", "pooling", "dense", "mixed", "activations", "conv_1xn"]


@pytest.fixture(scope="module")
def models():
    return builtin_models()


def test_the_models_cover_every_modelled_builtin_op(models):
    ops = {op.name for model in models.values() for op in read_graph(model).main.operators}
    assert {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "ADD",
        "MUL",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "MEAN",
        "RESHAPE",
        "SOFTMAX",
        "QUANTIZE",
        "DEQUANTIZE",
        "PAD",
        "CONCATENATION",
        "LOGISTIC",
        "RELU",
        "RELU6",
        "STRIDED_SLICE",
    } <= ops


@pytest.mark.parametrize("name", MODELS)
def test_x86_estimate_equals_the_interpreter(models, name):
    model = models[name]
    estimate = estimate_arena(model, "x86-64")
    measured = measure_host_arena(model)
    assert (estimate.total_bytes, estimate.head_bytes, estimate.tail_bytes) == (
        measured.total_bytes,
        measured.head_bytes,
        measured.tail_bytes,
    )
    assert estimate.certain and estimate.label == "estimate"
    assert sum(estimate.tail_parts.values()) == estimate.tail_bytes


@pytest.mark.parametrize("name", MODELS)
def test_x86_smallest_arena_equals_the_interpreter(models, name):
    model = models[name]
    estimate = estimate_arena(model, "x86-64")
    assert smallest_host_arena(model, estimate.total_bytes + 4096) == estimate.min_arena_bytes


def test_report_per_op(models):
    model = models["mobilenet_like_32"]
    report = arena_report(model, "x86-64")
    graph = read_graph(model)
    assert [op.op for op in report.ops] == [op.name for op in graph.main.operators]
    # The head is the highest address any operator uses; the peak operator reaches it.
    assert max(op.high_water_bytes for op in report.ops) == report.estimate.head_bytes
    assert report.ops[report.peak_op].high_water_bytes == report.estimate.head_bytes
    assert max(op.arena_high_water_bytes for op in report.ops) == report.estimate.total_bytes
    for op, row in zip(graph.main.operators, report.ops, strict=True):
        tensors = {b.tensor for b in row.live if b.kind == "tensor"}
        # Everything an operator reads or writes that lives in the arena is alive at it.
        planned = {i for i in op.inputs + op.outputs if i >= 0 and not graph.main.tensors[i].has_data}
        assert planned <= tensors
        # Live buffers never overlap in memory.
        spans = sorted((b.offset, b.offset + b.size) for b in row.live)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
        assert row.live_bytes == sum(b.size for b in row.live) <= row.high_water_bytes
    per_op = report.estimate.per_op
    assert (
        sum(op.persistent_bytes for op in per_op)
        == report.estimate.tail_parts["builtin_data"] + report.estimate.tail_parts["op_data"]
    )
    assert "peak" in report.format()


def test_unknown_op_is_a_conservative_guess():
    model = convert(tanh_model())
    estimate = estimate_arena(model, "x86-64")
    assert not estimate.certain
    assert any("TANH" in note for note in estimate.notes)
    assert estimate.total_bytes >= measure_host_arena(model).total_bytes
