"""The arena model on models with the RNNPool custom op.

The RNNPool op's prepared and scratch bytes come from the C core's own size functions
(rnnpool_tflm.runtime.native), which are target-independent (tests/test_kernel_m4.py checks
that on the emulated M4). Runtime: about 3 s.
"""

import pytest

from arena_models import rnnpool_model
from rnnpool_tflm.runtime import native
from rnnpool_tflm.arena import arena_report, estimate_arena
from rnnpool_tflm.arena.graph import read_graph
from rnnpool_tflm.arena.rnnpool_buffers import op_data_bytes
from rnnpool_tflm.core.errors import RNNPoolError


def _align16(n):
    return -(-n // 16) * 16


@pytest.fixture(scope="module")
def model():
    return rnnpool_model(size=32, channels=8, patch=8, stride=4, hidden1=16, hidden2=16)


def _rnnpool_config():
    # The op of rnnpool_model(): input [1, 16, 16, 8], patch 8, stride 4, valid, h1 = h2 = 16.
    return native.CConfig(batch=1, in_rows=16, in_cols=16, channels=8, patch_rows=8, patch_cols=8, stride_rows=4,
                          stride_cols=4, padding=0, hidden1=16, hidden2=16, gate_activation=0,
                          update_activation=0)


@pytest.mark.parametrize("target, pointer", [("x86-64", 8), ("cortex-m4", 4)])
def test_rnnpool_op_takes_opdata_prepared_and_scratch(model, target, pointer):
    prepared, scratch = native.buffer_bytes(_rnnpool_config(), "int8")
    report = arena_report(model, target)
    graph = read_graph(model)
    index = next(op.index for op in graph.main.operators if op.name == "RNNPool")
    row = report.estimate.per_op[index]
    assert row.scratch_bytes == scratch
    # Tail: the OpData and the prepared parameters, each rounded to the arena's 16 bytes.
    assert row.persistent_bytes == _align16(op_data_bytes(pointer)) + _align16(prepared)
    live = report.ops[index].live
    assert [b.nbytes for b in live if b.kind == "scratch"] == [scratch]
    op = graph.main.operators[index]
    tensors = {b.tensor for b in live if b.kind == "tensor"}
    assert {op.inputs[0], op.outputs[0]} <= tensors
    assert report.ops[index].high_water_bytes >= _align16(scratch) + sum(
        _align16(graph.main.tensors[t].nbytes) for t in (op.inputs[0], op.outputs[0]))


def test_host_and_m4_share_the_rnnpool_buffers_but_not_the_structs(model):
    host, m4 = estimate_arena(model, "x86-64"), estimate_arena(model, "cortex-m4")
    assert m4.tail_bytes < host.tail_bytes          # 32-bit pointers, smaller structs
    rnnpool = lambda e: next(op for op in e.per_op if op.op == "RNNPool")
    assert rnnpool(host).scratch_bytes == rnnpool(m4).scratch_bytes


def test_bigger_hidden_sizes_need_more_arena():
    small = estimate_arena(rnnpool_model(hidden1=8, hidden2=8), "cortex-m4")
    large = estimate_arena(rnnpool_model(hidden1=32, hidden2=32), "cortex-m4")
    assert large.tail_bytes > small.tail_bytes and large.total_bytes > small.total_bytes


def test_damaged_rnnpool_options_are_reported(model):
    damaged = model.replace(b"patch_rows", b"patch_xxxx")
    with pytest.raises(RNNPoolError, match="RNNPool operator 1: option 'patch_rows' missing"):
        estimate_arena(damaged, "cortex-m4")
