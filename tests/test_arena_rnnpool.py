"""The arena model on models with the RNNPool custom op.

The expected sizes are worked out by hand from docs/kernel.md's buffer formulas (the C core's
size functions are checked against them in test_kernel_host.py). Runtime: about 3 s.
"""

import pytest
from arena_models import rnnpool_model

from rnnpool_tflm.arena import arena_report, estimate_arena
from rnnpool_tflm.arena.graph import read_graph
from rnnpool_tflm.core.errors import RNNPoolError


def _align16(n):
    return -(-n // 16) * 16


@pytest.fixture(scope="module")
def model():
    return rnnpool_model(size=32, channels=8, patch=8, stride=4, hidden1=16, hidden2=16)


# The op of rnnpool_model(): input [1, 16, 16, 8], patch 8, stride 4, valid, h1 = h2 = 16, so
# Wo = 3, Ac = Ar = 2, Wu = 16, hp1 = hp2 = hm = 16, kp = 8 in docs/kernel.md's buffer formulas
# (rnn1_mode cached; S = 32, I = 128, P = 64):
#   scratch  = A(16) + A(256) + A(64)                 work: pixel, step, RNN2 states
#            + A(128) + A(64) + A(1024) + A(1536) + A(512)                                   = 3600
#   prepared = 320 + A(256) + A(512) + A(512) + A(512) + 48*16 + 48*16                       = 3648
# and the TFLM op's OpData (rnnpool_tflm.cc): int32 options[11], bool, char[96], bool, pointer,
# size_t, int -> 168 B with 8-byte pointers, 156 B with 4-byte ones (test_arena_struct_sizes.py
# checks the compilers agree).
SCRATCH, PREPARED = 3600, 3648
OP_DATA = {8: 168, 4: 156}


@pytest.mark.parametrize("target, pointer", [("x86-64", 8), ("cortex-m4", 4)])
def test_rnnpool_op_takes_opdata_prepared_and_scratch(model, target, pointer):
    report = arena_report(model, target)
    graph = read_graph(model)
    index = next(op.index for op in graph.main.operators if op.name == "RNNPool")
    row = report.estimate.per_op[index]
    assert row.scratch_bytes == SCRATCH
    # Tail: the OpData and the prepared parameters, each rounded to the arena's 16 bytes.
    assert row.persistent_bytes == _align16(OP_DATA[pointer]) + _align16(PREPARED)
    live = report.ops[index].live
    assert [b.nbytes for b in live if b.kind == "scratch"] == [SCRATCH]
    op = graph.main.operators[index]
    tensors = {b.tensor for b in live if b.kind == "tensor"}
    assert {op.inputs[0], op.outputs[0]} <= tensors
    # Input 16x16x8 and output 3x3x64 int8 live next to the scratch.
    assert report.ops[index].high_water_bytes >= _align16(SCRATCH) + _align16(16 * 16 * 8) + _align16(3 * 3 * 64)


def test_host_and_m4_share_the_rnnpool_buffers_but_not_the_structs(model):
    host, m4 = estimate_arena(model, "x86-64"), estimate_arena(model, "cortex-m4")
    assert m4.tail_bytes < host.tail_bytes  # 32-bit pointers, smaller structs
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


def test_the_planner_reads_the_ops_in_place_lag(model):
    """rnnpool_model()'s op (input rows of 16 x 8 B, 64 B output pixels, 3x3 patches, cached): patch
    (i, j) ends at 64(3i + j + 1) while its last pixel (4i + 7, 4j + 7) is read; the next read is
    8(16(4i + 7) + 4j + 8), or row 4i + 8 for j = 2: 512i + 1024. Largest end - next at (0, 2):
    192 - 1024 = -832 (j < 2: 64j - 32j - 896 at most -864; the last patch comes after the last read)."""
    from rnnpool_tflm.arena.kernels import _Op
    from rnnpool_tflm.arena.rnnpool_buffers import rnnpool_inplace_lag
    from rnnpool_tflm.arena.targets import get_target

    graph = read_graph(model)
    op = next(op for op in graph.main.operators if op.name == "RNNPool")
    assert rnnpool_inplace_lag(_Op(graph, op, get_target("cortex-m4"))) == -832
