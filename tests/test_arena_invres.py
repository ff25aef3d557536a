"""The arena model on models with the InvertedResidual custom op.

The expected sizes of one block are worked out by hand from the buffer formulas of
custom_ops/inverted_residual/inverted_residual.h; with TFLM_DIR the x86-64 estimate of fused
models equals what the tflite-micro interpreter (ops registered) allocates, byte for byte.
Runtime: about 2 s, plus about 60 s with TFLM_DIR (two conversions, shared with test_ir_fusion.py).
"""

import os

import invres_models as im
import numpy as np
import pytest

from rnnpool_tflm.arena import arena_report, estimate_arena
from rnnpool_tflm.arena.graph import read_graph
from rnnpool_tflm.arena.kernels import kernel_memory
from rnnpool_tflm.arena.targets import get_target
from rnnpool_tflm.convert.ir_fusion import fuse_inverted_residuals
from rnnpool_tflm.core.errors import RNNPoolError


def _align16(n):
    return -(-n // 16) * 16


@pytest.fixture(scope="module")
def model():
    """One residual block: input [1, 6, 7, 8], expansion to 16 channels, 8 out, stride 1, fused."""
    p = im.random_params(np.random.default_rng(11), 8, 16, 8, 1, True, True)
    fused, report = fuse_inverted_residuals(im.unfused_model(p, (1, 6, 7, 8)))
    assert len(report.fused) == 1
    return fused


# Ci = Co = 8, Ce = E = 16, R = 1, Wo = 7, Wr = (7 - 1) + 3 = 9 (inverted_residual.h):
#   scratch  = A(16*(16 + 16 + 8)) + 2048 + A(3*9*16) + A(8*8) + A(8*16) = 640 + 2048 + 432 + 64 + 128 = 3312
#   prepared = 256 + 8*(16 + 16 + 8)                                                                = 576
# and the TFLM op's OpData (inverted_residual_tflm.cc): invres::Options {int32 values[8], bool, char[96]}
# = 132 B, then a pointer, a size_t and an int -> 160 B with 8-byte pointers, 144 B with 4-byte ones
# (test_arena_struct_sizes.py checks the compilers agree).
SCRATCH, PREPARED = 3312, 576
OP_DATA = {8: 160, 4: 144}


@pytest.mark.parametrize("target, pointer", [("x86-64", 8), ("cortex-m4", 4)])
def test_the_op_takes_opdata_prepared_and_scratch(model, target, pointer):
    report = arena_report(model, target)
    (row,) = report.estimate.per_op
    assert row.op == "InvertedResidual" and row.certain
    assert row.scratch_bytes == SCRATCH
    graph = read_graph(model)
    memory = kernel_memory(graph, graph.main.operators[0], get_target(target))
    assert (memory.init, memory.persistent, memory.scratch) == ([OP_DATA[pointer]], [PREPARED], [SCRATCH])
    # In the tail each moves down to its alignment, from wherever the tail stood.
    assert OP_DATA[pointer] + PREPARED <= row.persistent_bytes < _align16(OP_DATA[pointer]) + _align16(PREPARED) + 16
    (op,) = report.ops
    assert [b.nbytes for b in op.live if b.kind == "scratch"] == [SCRATCH]
    # Input and output (6x7x8 int8 each) live next to the scratch; no expanded map anywhere.
    assert op.live_bytes == _align16(SCRATCH) + 2 * _align16(6 * 7 * 8)


def test_the_fused_model_needs_less_arena_than_the_plain_one():
    p = im.random_params(np.random.default_rng(12), 16, 96, 16, 1, True, True)
    plain = im.unfused_model(p, (1, 24, 32, 16))
    fused, _ = fuse_inverted_residuals(plain)
    plain_m4, fused_m4 = estimate_arena(plain, "cortex-m4"), estimate_arena(fused, "cortex-m4")
    assert plain_m4.head_bytes >= 24 * 32 * 96 + 24 * 32 * 16  # the expanded map and the block input at least
    assert fused_m4.head_bytes < 24 * 32 * 96


def test_damaged_options_are_reported(model):
    damaged = model.replace(b"depthwise_activation", b"depthwise_xctivation")
    with pytest.raises(RNNPoolError, match="InvertedResidual operator 0: .*depthwise_xctivation"):
        estimate_arena(damaged, "cortex-m4")


def _registerers():
    if not os.environ.get("TFLM_DIR"):
        pytest.skip("TFLM_DIR is not set (the ops' registerer is compiled against TFLM's headers)")
    from rnnpool_tflm.runtime import registerer as tflm_registerer

    return tflm_registerer.load_all()


@pytest.mark.tflm
@pytest.mark.parametrize("name", ["block", "toy", "face_m4"])
def test_x86_estimate_of_fused_models_equals_the_interpreter(model, name):
    from rnnpool_tflm.arena.host import measure_host_arena, smallest_host_arena

    registerers = _registerers()
    if name == "block":
        tflite = model
    else:
        from test_ir_fusion import _converted

        tflite = _converted(name, True).tflite
    assert "InvertedResidual" in {op.name for op in read_graph(tflite).main.operators}
    estimate = estimate_arena(tflite, "x86-64")
    measured = measure_host_arena(tflite, registerers=registerers)
    assert (estimate.total_bytes, estimate.head_bytes, estimate.tail_bytes) == (
        measured.total_bytes,
        measured.head_bytes,
        measured.tail_bytes,
    )
    assert estimate.certain
    if name == "block":  # bisection: a few dozen forked allocations
        assert smallest_host_arena(tflite, estimate.total_bytes + 4096, registerers) == estimate.min_arena_bytes
