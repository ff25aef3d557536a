"""The converter's inverted-residual pass (convert/ir_fusion.py): MobileNetV2 blocks become
InvertedResidual ops and the outputs keep their bytes (host: the partitioned runner, and with
TFLM_DIR the tflite-micro interpreter with the registered ops; the emulated M4 in a slow test);
chains with another reader of an intermediate, or that the op cannot compute, are left alone.
Runtime about 90 s on 2 cores (five small conversions); the slow emulated test about 1 min once
the firmware's TFLM library is cached (its first build takes many minutes)."""

from __future__ import annotations

import functools
import os
import shutil

import invres_models as im
import numpy as np
import pytest

from rnnpool_tflm.analysis.zoo import build_zoo_model, conv_bn_relu6, inverted_residual
from rnnpool_tflm.convert.ir_fusion import fuse_inverted_residuals
from rnnpool_tflm.convert.keras_converter import convert_model
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.runtime import host
from rnnpool_tflm.tflite import inverted_residual_op as irop
from rnnpool_tflm.tflite import model as tfm

L = keras.layers
FACE_INPUT = (40, 56, 1)  # the smallest-ish Face-M4 the zoo builds: RNNPool 4x6 -> padded 5x7x64
TOY_INPUT = (24, 24, 3)


def _randomize_batchnorm(model, seed: int):
    """BatchNorm statistics away from the identity, so the folded weights and biases are not trivial."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            g, b, mu, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, g.shape),
                    rng.normal(0, 0.3, b.shape),
                    rng.normal(0, 0.3, mu.shape),
                    rng.uniform(0.5, 1.5, var.shape),
                ]
            )
    return model


def _toy_mobilenetv2():
    """Stem, then blocks t=1 s1 (no expansion, residual), t=4 s2, t=4 s1 (residual), t=6 s1 to more
    channels (no residual), then a classifier; the last block's output is a second model output."""
    keras.utils.set_random_seed(3)
    i = keras.Input(TOY_INPUT, name="image")
    x = conv_bn_relu6(i, 8, 3, 2, "stem")  # 12x12x8
    x = inverted_residual(x, 1, 8, 1, "block1")
    x = inverted_residual(x, 4, 16, 2, "block2")  # 6x6x16
    x = inverted_residual(x, 4, 16, 1, "block3")
    features = inverted_residual(x, 6, 24, 1, "block4")
    logits = L.Dense(3, name="logits")(L.GlobalAveragePooling2D()(features))
    return _randomize_batchnorm(keras.Model(i, [logits, features]), 3)


def _shared_intermediates():
    """Two blocks whose intermediates have a second reader: block a's expanded map and block b's
    depthwise output are model outputs too (GAP)."""
    keras.utils.set_random_seed(4)
    i = keras.Input((10, 10, 8), name="image")
    e = L.ReLU(6.0, name="a_expand_relu6")(
        L.BatchNormalization(name="a_expand_bn")(L.Conv2D(16, 1, use_bias=False, name="a_expand")(i))
    )
    d = L.ReLU(6.0, name="a_dw_relu6")(
        L.BatchNormalization(name="a_dw_bn")(L.DepthwiseConv2D(3, padding="same", use_bias=False, name="a_dw")(e))
    )
    a = L.BatchNormalization(name="a_project_bn")(L.Conv2D(8, 1, use_bias=False, name="a_project")(d))
    e2 = L.ReLU(6.0, name="b_expand_relu6")(L.Conv2D(16, 1, name="b_expand")(a))
    d2 = L.ReLU(6.0, name="b_dw_relu6")(L.DepthwiseConv2D(3, padding="same", name="b_dw")(e2))
    b = L.Conv2D(8, 1, name="b_project")(d2)
    gap = L.GlobalAveragePooling2D
    return _randomize_batchnorm(keras.Model(i, [b, gap(name="expanded_gap")(e), gap(name="dw_gap")(d2)]), 4)


def _face_m4():
    keras.utils.set_random_seed(5)  # the same weights for the fused and the plain conversion
    return _randomize_batchnorm(build_zoo_model("face_m4", input_shape=FACE_INPUT), 5)


MODELS = {
    "toy": (_toy_mobilenetv2, TOY_INPUT),
    "face_m4": (_face_m4, FACE_INPUT),
    "shared": (_shared_intermediates, (10, 10, 8)),
}


@functools.cache
def _converted(name: str, fuse: bool):
    build, shape = MODELS[name]
    data = np.random.default_rng(0).uniform(0, 1, (16, *shape)).astype(np.float32)
    return convert_model(build(), data, fuse=fuse)


def _op_names(tflite: bytes):
    m = tfm.read_model(tflite)
    return [tfm.opcode_name(m, op.opcodeIndex) for op in m.subgraphs[0].operators]


def _inputs(name: str, count: int = 3):
    return [im.random_input(np.random.default_rng(7), (count, *MODELS[name][1]))]


def _assert_same_outputs(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def _registered_available() -> bool:
    return bool(os.environ.get("TFLM_DIR")) and host.registered_available()


@pytest.mark.parametrize("name, blocks", [("toy", 4), ("face_m4", 4)])
def test_every_block_becomes_one_op_with_the_same_output_bytes(name, blocks):
    plain, fused = _converted(name, False), _converted(name, True)
    names = _op_names(fused.tflite)
    assert names.count("InvertedResidual") == blocks
    assert "DEPTHWISE_CONV_2D" not in names and "ADD" not in names
    assert [op for op in _op_names(plain.tflite) if op == "DEPTHWISE_CONV_2D"] == ["DEPTHWISE_CONV_2D"] * blocks
    assert len(fused.fusion.fused) == blocks and not fused.fusion.skipped
    assert "InvertedResidual" in fused.fusion.format() and plain.fusion is None
    m = tfm.read_model(fused.tflite)
    assert all(tfm.opcode_name(m, i) in names for i in range(len(m.operatorCodes)))  # no dead operator codes
    modes = ["partitioned"] + (["registered"] if _registered_available() else [])
    expected = host.run(plain.tflite, _inputs(name), mode="partitioned").outputs
    assert len(np.unique(expected[-1])) > 10  # a real map, not a saturated one
    for mode in modes:
        _assert_same_outputs(host.run(fused.tflite, _inputs(name), mode=mode).outputs, expected)


def test_the_toy_model_keeps_its_block_structure():
    report = _converted("toy", True).fusion
    assert [b.ops for b in report.fused] == [
        ("DEPTHWISE_CONV_2D", "CONV_2D", "ADD"),
        ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"),
        ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD"),
        ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"),
    ]
    assert [b.output_shape for b in report.fused] == [(1, 12, 12, 8), (1, 6, 6, 16), (1, 6, 6, 16), (1, 6, 6, 24)]
    m = tfm.read_model(_converted("toy", True).tflite)
    nodes = [irop.decode(m, 0, i) for i, op in enumerate(m.subgraphs[0].operators) if irop.is_inverted_residual(m, op)]
    assert [(n.options["stride"], n.options["expand"], n.options["residual"]) for n in nodes] == [
        (1, 0, 1),
        (2, 1, 0),
        (1, 1, 1),
        (1, 1, 0),
    ]


def test_an_intermediate_with_another_reader_is_not_fused():
    plain, fused = _converted("shared", False), _converted("shared", True)
    report = fused.fusion
    # Block a: its expanded map is read by a GAP too, so the expansion stays a CONV_2D and only
    # depthwise -> projection is fused. Block b: its depthwise output is read by a GAP: nothing fused.
    assert [b.ops for b in report.fused] == [("DEPTHWISE_CONV_2D", "CONV_2D")]
    assert "expansion left out" in report.fused[0].left_out and "other readers" in report.fused[0].left_out
    assert len(report.skipped) == 1 and "not read by one 1x1 CONV_2D only" in report.skipped[0].reason
    assert _op_names(fused.tflite).count("DEPTHWISE_CONV_2D") == 1
    assert _op_names(fused.tflite).count("InvertedResidual") == 1
    _assert_same_outputs(
        host.run(fused.tflite, _inputs("shared")).outputs, host.run(plain.tflite, _inputs("shared")).outputs
    )


def _unfused_block(expand=True, residual=True):
    rng = np.random.default_rng(11)
    p = im.random_params(rng, 8, 16 if expand else 8, 8, 1, expand, residual)
    return im.unfused_model(p, (1, 6, 7, 8))


def _edited(tflite: bytes, edit) -> bytes:
    m = tfm.read_model(tflite)
    edit(m, m.subgraphs[0])
    return tfm.write_model(m)


def _op(m, sg, name):
    return next(op for op in sg.operators if tfm.opcode_name(m, op.opcodeIndex) == name)


def _dilate(m, sg):
    _op(m, sg, "DEPTHWISE_CONV_2D").builtinOptions.dilationHFactor = 2


def _stride_three(m, sg):
    o = _op(m, sg, "DEPTHWISE_CONV_2D").builtinOptions
    o.strideH = o.strideW = 3


@pytest.mark.parametrize(
    "edit, reason",
    [(_dilate, "not a 3x3 SAME stride-1/2 depthwise"), (_stride_three, "not a 3x3 SAME stride-1/2 depthwise")],
)
def test_a_chain_the_op_cannot_compute_stays_and_says_why(edit, reason):
    model = _edited(_unfused_block(), edit)
    out, report = fuse_inverted_residuals(model)
    assert out == model and not report.fused
    assert len(report.skipped) == 1 and reason in report.skipped[0].reason


def test_a_refused_add_is_left_out_and_the_rest_fused():
    def tanh_on_the_add(m, sg):  # a fused TANH: the op's contract has no such add_activation
        _op(m, sg, "ADD").builtinOptions.fusedActivationFunction = 4

    model = _edited(_unfused_block(), tanh_on_the_add)
    out, report = fuse_inverted_residuals(model)
    assert _op_names(out) == ["InvertedResidual", "ADD"]
    assert report.fused[0].ops == ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D")
    assert report.fused[0].left_out.startswith("ADD left out")
    x = im.random_input(np.random.default_rng(2), (2, 6, 7, 8))
    _assert_same_outputs(host.run(out, [x]).outputs, host.run(model, [x]).outputs)


def test_fusing_is_idempotent_and_keeps_a_fused_model():
    once, _ = fuse_inverted_residuals(_unfused_block())
    twice, report = fuse_inverted_residuals(once)
    assert twice == once and not report.fused and not report.skipped


def test_the_convert_command_lists_the_fused_blocks(tmp_path, capsys):
    import argparse

    from rnnpool_tflm.cli.commands import convert as convert_command

    path = tmp_path / "toy.keras"
    _toy_mobilenetv2().save(path)
    np.savez(tmp_path / "rep.npz", x=np.random.default_rng(0).uniform(0, 1, (8, *TOY_INPUT)).astype(np.float32))
    args = argparse.Namespace(
        model=str(path),
        output=str(tmp_path / "toy.tflite"),
        representative=str(tmp_path / "rep.npz"),
        float_io=False,
        no_fuse=False,
    )
    assert convert_command.run(args) == 0
    text = capsys.readouterr().out
    assert "fused: 4 inverted-residual block(s)" in text
    assert "CONV_2D -> DEPTHWISE_CONV_2D -> CONV_2D -> ADD => InvertedResidual" in text


def test_output_sha256_is_the_digest_of_the_output_bytes_in_order():
    import hashlib

    a = np.array([[1, -1], [127, -128]], np.int8)
    b = np.array([258], np.int32)  # little-endian on every supported host: 02 01 00 00
    want = hashlib.sha256(bytes([1, 255, 127, 128, 2, 1, 0, 0])).hexdigest()
    assert host.output_sha256([a, b]) == want
    assert host.output_sha256([b, a]) != want
    assert host.output_sha256([a.T]) == hashlib.sha256(bytes([1, 127, 255, 128])).hexdigest()  # C order


def test_check_gives_fused_and_plain_models_the_same_output_sha256():
    from rnnpool_tflm.check.checker import check_model

    reports = {
        fuse: check_model(_converted("toy", fuse).tflite, samples=8, measure_arena=False) for fuse in (False, True)
    }
    assert reports[True].output_sha256 == reports[False].output_sha256
    assert len(reports[True].output_sha256) == 64
    assert reports[True].as_json()["output_sha256"] == reports[True].output_sha256
    assert f"SHA-256: {reports[True].output_sha256}" in reports[True].format()
    other = check_model(_converted("toy", True).tflite, samples=8, measure_arena=False, seed=1)
    assert other.output_sha256 != reports[True].output_sha256  # other inputs, other bytes


@pytest.mark.slow
@pytest.mark.tflm
def test_fused_and_plain_face_m4_give_the_same_bytes_on_the_emulated_m4(tmp_path):
    from rnnpool_tflm.deploy import build, emulate

    if not os.environ.get("TFLM_DIR"):
        pytest.skip("TFLM_DIR is not set (the firmware is built against TFLM)")
    if build.missing_tools() or shutil.which(emulate.QEMU) is None:
        pytest.skip("the Arm toolchain or QEMU is missing")
    runs = {}
    for fuse in (False, True):
        path = tmp_path / f"face_{fuse}.tflite"
        path.write_bytes(_converted("face_m4", fuse).tflite)
        runs[fuse] = emulate.emulate_model(path, timeout=300).as_dict()
    for run in runs.values():
        assert run["output_matches_host"]
    # The device's digest is the host's (the firmware's input: deploy.host_run's deterministic one).
    from rnnpool_tflm.deploy.host_run import load_inputs
    from rnnpool_tflm.tflite.model_info import read_model_info

    plain = _converted("face_m4", False).tflite
    host_digest = host.output_sha256(host.run(plain, load_inputs(None, read_model_info(plain))).outputs)
    assert runs[True]["output_sha256"] == runs[False]["output_sha256"] == host_digest
    assert [o["op"] for o in runs[True]["op_instructions"]].count("InvertedResidual") == 4
    # The arena model sizes both exactly (the fused op's OpData, prepared data and scratch included).
    from rnnpool_tflm.arena import estimate_arena

    for fuse, run in runs.items():
        assert estimate_arena(_converted("face_m4", fuse).tflite, "cortex-m4").total_bytes == run["arena_used_bytes"]
