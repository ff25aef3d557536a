"""The converter folds the replicate pad after RNNPool into the op (convert/pad_fold.py):
byte-identical outputs with and without the fold, and no fold where it would not be
a plain copy. Runtime about 25 s (three small conversions)."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest

from rnnpool_tflm.analysis.zoo import replicate_pad_bottom_right
from rnnpool_tflm.convert.keras_converter import convert_model
from rnnpool_tflm.convert.pad_fold import fold_replicate_pads
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.layer.rnnpool import RNNPool
from rnnpool_tflm.runtime import host as host_runtime
from rnnpool_tflm.tflite import model as tfm

L = keras.layers


def _padded_model(extra_reader: bool = False, twice: bool = False):
    """conv s2 -> RNNPool (valid) -> EdgeML's replicate pad (zoo's Cropping2D + Concatenate)
    -> conv 1x1 -> GAP -> Dense, with the padded map as a second model output."""
    keras.utils.set_random_seed(5)
    i = keras.Input((22, 27, 1), name="img")
    x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="stem")(i)
    r = RNNPool(4, 2, (8, 6), name="rp")(x)  # 11x14 -> 4x6x24
    p = replicate_pad_bottom_right(r, "rp_pad")  # -> 5x7x24
    if twice:
        p = replicate_pad_bottom_right(p, "rp_pad2")  # -> 6x8x24
    y = L.Conv2D(8, 1, name="head_conv")(p)
    logits = L.Dense(3, name="logits")(L.GlobalAveragePooling2D()(y))
    outputs = [logits, p]
    if extra_reader:  # the unpadded map is read by another op too: no fold
        outputs.append(L.GlobalAveragePooling2D(name="raw_gap")(r))
    return keras.Model(i, outputs)


def _data(n=24, seed=0):
    return np.random.default_rng(seed).random((n, 22, 27, 1)).astype(np.float32)


@functools.cache
def _converted(fuse: bool, extra_reader: bool = False, twice: bool = False) -> bytes:
    return convert_model(_padded_model(extra_reader, twice), _data(), fuse=fuse).tflite


def _op_names(tflite: bytes):
    m = tfm.read_model(tflite)
    return [tfm.opcode_name(m, op.opcodeIndex) for op in m.subgraphs[0].operators]


def _rnnpool(tflite: bytes):
    (node,) = tfm.validate_model(tfm.read_model(tflite))
    return node


def _run(tflite: bytes, mode: str):
    model = host_runtime.HostModel(tflite, mode)
    inputs = [host_runtime.quantize_inputs(model.input_details[0], _data(16, seed=1))]
    return model.run(inputs)


def test_the_fold_replaces_the_slices_and_concatenations_by_the_op_options():
    plain, fused = _converted(False), _converted(True)
    assert _op_names(plain).count("STRIDED_SLICE") == 2 and _op_names(plain).count("CONCATENATION") == 2
    assert "STRIDED_SLICE" not in _op_names(fused) and "CONCATENATION" not in _op_names(fused)
    node = _rnnpool(fused)
    assert node.options["output_pad_bottom"] == 1 and node.options["output_pad_right"] == 1
    assert node.output_shape == (1, 5, 7, 24) and node.params.config.output_padding == (1, 1)
    assert _rnnpool(plain).output_shape == (1, 4, 6, 24) and _rnnpool(plain).options["output_pad_bottom"] == 0
    assert len(fused) < len(plain)


def test_two_pads_fold_into_two_rows_and_columns():
    node = _rnnpool(_converted(True, twice=True))
    assert node.params.config.output_padding == (2, 2) and node.output_shape == (1, 6, 8, 24)


@pytest.mark.parametrize("twice", [False, True])
def test_fused_and_plain_models_give_the_same_output_bytes(twice):
    plain, fused = (
        _run(_converted(False, twice=twice), "partitioned"),
        _run(_converted(True, twice=twice), "partitioned"),
    )
    assert len(plain.outputs) == len(fused.outputs) == 2
    for a, b in zip(plain.outputs, fused.outputs, strict=True):
        assert a.dtype == b.dtype == np.int8
        np.testing.assert_array_equal(a, b)
    assert len(np.unique(fused.outputs[1])) > 10  # a real map, not a saturated one


@pytest.mark.tflm
@pytest.mark.skipif(not os.environ.get("TFLM_DIR"), reason="TFLM_DIR is not set: the registerer needs TFLM sources")
def test_fused_model_in_the_tflm_interpreter_equals_the_plain_one():
    plain = _run(_converted(False), "partitioned")
    fused = _run(_converted(True), "registered")
    for a, b in zip(plain.outputs, fused.outputs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_fold_when_the_unpadded_map_has_another_reader():
    tflite = _converted(True, extra_reader=True)
    assert _op_names(tflite).count("CONCATENATION") == 2
    assert _rnnpool(tflite).params.config.output_padding == (0, 0)


def _edited(edit) -> bytes:
    m = tfm.read_model(_converted(False))
    edit(m, m.subgraphs[0])
    return tfm.write_model(m)


def _ops(m, sg, name):
    return [op for op in sg.operators if tfm.opcode_name(m, op.opcodeIndex) == name]


def _requantize_concat(m, sg):
    out = sg.tensors[_ops(m, sg, "CONCATENATION")[0].outputs[0]]
    out.quantization.scale = [out.quantization.scale[0] * 2]


def _slice_second_to_last_row(m, sg):
    op = _ops(m, sg, "STRIDED_SLICE")[0]
    begin = sg.tensors[op.inputs[1]]
    values = tfm.constant_data(m, begin).copy()
    values[1] -= 1
    m.buffers[begin.buffer].data = np.frombuffer(values.tobytes(), np.uint8)


def _fuse_relu_into_concat(m, sg):
    _ops(m, sg, "CONCATENATION")[0].builtinOptions.fusedActivationFunction = 1


@pytest.mark.parametrize("edit", [_requantize_concat, _slice_second_to_last_row, _fuse_relu_into_concat])
def test_no_fold_unless_the_step_is_a_plain_copy(edit):
    tflite = _edited(edit)
    assert fold_replicate_pads(tflite) == (tflite, 0)


def test_only_the_steps_that_are_copies_fold():
    """A second step that is not a copy stops the chain; the first step still folds."""

    def edit(m, sg):
        concat = _ops(m, sg, "CONCATENATION")[1]
        concat.builtinOptions.fusedActivationFunction = 1

    folded, count = fold_replicate_pads(_edited(edit))
    assert count == 1 and _op_names(folded).count("CONCATENATION") == 1
    node = _rnnpool(folded)
    assert node.params.config.output_padding == (1, 0) and node.output_shape == (1, 5, 6, 24)


def test_the_convert_command_folds_unless_told_no_fuse(tmp_path, capsys):
    import argparse

    from rnnpool_tflm.cli.commands import convert as convert_command

    path = tmp_path / "padded.keras"
    _padded_model().save(path)
    np.savez(tmp_path / "rep.npz", x=_data())
    names = {}
    for flag in (False, True):
        out = tmp_path / f"model_{flag}.tflite"
        args = argparse.Namespace(
            model=str(path), output=str(out), representative=str(tmp_path / "rep.npz"), float_io=False, no_fuse=flag
        )
        assert convert_command.run(args) == 0
        names[flag] = _op_names(out.read_bytes())
    assert "CONCATENATION" not in names[False] and names[True].count("CONCATENATION") == 2
