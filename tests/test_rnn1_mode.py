"""The op's rnn1_mode in models: set per op, same output bytes, the arena model sees the
smaller scratch. Runtime about 15 s (one small conversion, shared with test_pad_fold)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from test_pad_fold import _converted, _rnnpool, _run

from rnnpool_tflm.arena import estimate_arena
from rnnpool_tflm.arena.graph import read_graph
from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.runtime import native
from rnnpool_tflm.tflite import model as tfm
from rnnpool_tflm.tflite import offline_plan


def _scratch(tflite: bytes) -> int:
    return next(op.scratch_bytes for op in estimate_arena(tflite, "cortex-m4").per_op if op.op == "RNNPool")


def test_recompute_mode_is_an_option_of_the_op_with_its_own_scratch():
    cached = _converted(True)
    recompute = tfm.set_rnn1_mode(cached, "recompute")
    node = _rnnpool(recompute)
    assert node.options["rnn1_mode"] == 1 and node.params.config.rnn1_mode == "recompute"
    assert _rnnpool(cached).options["rnn1_mode"] == 0
    config = RNNPoolConfig.create(4, 2, (8, 6), output_padding=(1, 1), rnn1_mode="recompute")
    assert _scratch(recompute) == native.layer_buffer_bytes(config, node.input_shape)[1] < _scratch(cached)
    # The default is not written; the offline memory plan goes (the op's in-place lag depends on the mode).
    assert read_graph(cached).offline_offsets is not None and read_graph(recompute).offline_offsets is None
    assert tfm.set_rnn1_mode(recompute, "cached") == offline_plan.write_with_plan(cached, None)


def test_recompute_and_cached_models_give_the_same_output_bytes():
    cached = _converted(True)
    a, b = _run(cached, "partitioned"), _run(tfm.set_rnn1_mode(cached, "recompute"), "partitioned")
    for x, y in zip(a.outputs, b.outputs, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.tflm
@pytest.mark.skipif(not os.environ.get("TFLM_DIR"), reason="TFLM_DIR is not set: the registerer needs TFLM sources")
def test_recompute_mode_in_the_tflm_interpreter():
    cached = _converted(True)
    a, b = _run(cached, "partitioned"), _run(tfm.set_rnn1_mode(cached, "recompute"), "registered")
    for x, y in zip(a.outputs, b.outputs, strict=True):
        np.testing.assert_array_equal(x, y)


def test_bad_requests_are_named():
    cached = _converted(True)
    with pytest.raises(tfm.ModelError, match="rnn1_mode must be one of"):
        tfm.set_rnn1_mode(cached, "sometimes")
    with pytest.raises(tfm.ModelError, match="operator 0 is not an RNNPool op"):
        tfm.set_rnn1_mode(cached, "recompute", [0])
