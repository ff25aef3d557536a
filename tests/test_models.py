"""The model zoo (rnnpool_tflm.analysis.zoo): architecture, the paper's numbers, forward, training,
serialization, quantization and conversion of the parts the zoo adds (replicate pad, L2Norm).

Runtime about 1 minute on 2 cores (the 224x224 and 640x480 models are built and run once).
"""

import math

import numpy as np
import pytest

from rnnpool_tflm import convert
from rnnpool_tflm.analysis import zoo as models
from rnnpool_tflm.analysis.counts import KIB, MIB, analyze, rnnpool_patch_macs
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.quantize import model as quantize

L = keras.layers


@pytest.fixture(scope="module")
def zoo():
    """Every zoo model at its default size, built once."""
    return {name: models.build_zoo_model(name) for name in models.ZOO}


# -- architecture ---------------------------------------------------------------------------------


def _shape(model, layer):
    return tuple(model.get_layer(layer).output.shape[1:])


def test_mobilenetv2_rnnpool_follows_table_10(zoo):
    m = zoo["mobilenetv2_rnnpool"]
    assert _shape(m, "stem_relu6") == (112, 112, 32)
    assert _shape(m, "rnnpool") == (27, 27, 64)  # valid 6x6 patches, stride 4
    assert _shape(m, "rnnpool_pad_cols") == (28, 28, 64)  # replicate pad as EdgeML
    # (t, c, n, s): (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1)
    assert _shape(m, "block4_project_bn") == (14, 14, 64)
    assert _shape(m, "block7_add") == (14, 14, 96)
    assert _shape(m, "block10_add") == (7, 7, 160)
    assert _shape(m, "block11_project_bn") == (7, 7, 320)
    assert _shape(m, "last_relu6") == (7, 7, 1280)
    assert m.output_shape == (None, 10)
    pool = m.get_layer("rnnpool").rnnpool_config
    assert pool.patch_size == (6, 6) and pool.strides == (4, 4) and pool.hidden_dims == (16, 16)
    assert "block12_expand" not in [layer.name for layer in m.layers]


def test_mobilenetv2_baseline_is_sandler_et_al(zoo):
    m = zoo["mobilenetv2"]
    assert _shape(m, "block1_project_bn") == (112, 112, 16)
    assert _shape(m, "block3_add") == (56, 56, 24)
    assert _shape(m, "block6_add") == (28, 28, 32)
    assert _shape(m, "block10_add") == (14, 14, 64)
    assert _shape(m, "block17_project_bn") == (7, 7, 320)
    assert m.output_shape == (None, 10)


def test_vww_width_multiplier_rounds_to_multiples_of_8(zoo):
    m = zoo["mobilenetv2_rnnpool_vww"]
    assert _shape(m, "stem_relu6") == (112, 112, 8)
    assert _shape(m, "rnnpool_pad_cols") == (28, 28, 32)  # 4 * h2, h1 = h2 = 8
    # 64, 96, 160, 320 x 0.35 -> 24, 32, 56, 112 (make_divisible), last conv 320, 2 classes
    assert _shape(m, "block4_add") == (14, 14, 24)
    assert _shape(m, "block7_add") == (14, 14, 32)
    assert _shape(m, "block10_add") == (7, 7, 56)
    assert _shape(m, "block11_project_bn") == (7, 7, 112)
    assert _shape(m, "last_relu6") == (7, 7, 320)
    assert m.output_shape == (None, 2)
    assert [models.make_divisible(c * 0.35) for c in (32, 16, 24, 64, 96, 160, 320)] == [16, 8, 8, 24, 32, 56, 112]


def test_face_m4_follows_table_15_and_edgeml(zoo):
    m = zoo["face_m4"]
    assert m.input_shape == (None, 240, 320, 1)
    assert _shape(m, "stem_relu6") == (120, 160, 4)
    assert _shape(m, "rnnpool") == (29, 39, 64)
    assert _shape(m, "rnnpool_pad_cols") == (30, 40, 64)
    assert _shape(m, "block1_project_bn") == (30, 40, 32)
    assert _shape(m, "block2_add") == (30, 40, 32)
    assert _shape(m, "block3_project_bn") == (15, 20, 64)
    assert _shape(m, "block4_add") == (15, 20, 64)
    assert [tuple(o.shape[1:]) for o in m.outputs] == [
        (30, 40, 4),
        (30, 40, 4),
        (30, 40, 4),
        (30, 40, 2),
        (15, 20, 4),
        (15, 20, 2),
        (15, 20, 4),
        (15, 20, 2),
    ]
    assert [o.name.split("/")[0] for o in m.outputs] == [
        "loc0",
        "conf0",
        "loc1",
        "conf1",
        "loc2",
        "conf2",
        "loc3",
        "conf3",
    ]
    assert m.get_layer("rnnpool").rnnpool_config.hidden_dims == (16, 16)


def test_face_quant_follows_table_14_and_edgeml(zoo):
    m = zoo["face_quant"]
    assert _shape(m, "stem2_relu6") == (240, 320, 4)
    assert _shape(m, "rnnpool") == (59, 79, 32)
    assert _shape(m, "rnnpool_pad_cols") == (60, 80, 32)
    sizes = [tuple(o.shape[1:3]) for o in m.outputs[::2]]
    assert sizes == [(120, 160), (60, 80), (30, 40), (15, 20), (8, 10), (4, 5)]
    assert tuple(m.outputs[1].shape[1:]) == (120, 160, 4)  # max-out background head
    assert _shape(m, "block4_add") == (60, 80, 16) and _shape(m, "block12_project_bn") == (4, 5, 96)


def test_maxout_background_keeps_the_max_of_the_first_three():
    scores = np.arange(2 * 3 * 5, dtype=np.float32).reshape(1, 2, 3, 5) * np.array([1, -1, 2, 3, -2])
    out = models.maxout_background(scores).numpy()
    assert out.shape == (1, 2, 3, 3)
    np.testing.assert_array_equal(out[..., 0], scores[..., :3].max(axis=-1))
    np.testing.assert_array_equal(out[..., 1:], scores[..., 3:])
    with pytest.raises(ValueError, match="at least 4"):
        models.maxout_background(np.zeros((1, 2, 2, 3), np.float32))


# -- numbers: our counts by an independent closed form, then against the paper ------------------------


def _mbv2_closed_form(size, stages, alpha, stem, last, classes, rnnpool_hidden=None):
    """Parameters (conv weights, BN gamma/beta, classifier bias) and MACs of a (RNNPool-)MobileNetV2,
    added up from the stage table."""
    params, macs = 0, 0
    hw, c = math.ceil(size / 2), stem
    params += 27 * stem + 2 * stem
    macs += hw * hw * 27 * stem
    if rnnpool_hidden:
        h = rnnpool_hidden
        n = (hw - 6) // 4 + 1
        params += (c * h + h * h + 2 * h + 2) + (h * h + h * h + 2 * h + 2)
        macs += n * n * (2 * 36 * (c * h + h * h) + 2 * 12 * (h * h + h * h))
        hw, c = n + 1, 4 * h
    for t, channels, repeats, stride in stages:
        out = models.make_divisible(channels * alpha)
        for i in range(repeats):
            hidden = c * t
            if t != 1:
                params += c * hidden + 2 * hidden
                macs += hw * hw * c * hidden
            hw = math.ceil(hw / (stride if i == 0 else 1))
            params += 9 * hidden + 2 * hidden + hidden * out + 2 * out
            macs += hw * hw * (9 * hidden + hidden * out)
            c = out
    params += c * last + 2 * last + last * classes + classes
    macs += hw * hw * c * last + last * classes
    return params, macs


@pytest.mark.parametrize(
    "name,size,stages,alpha,stem,last,classes,hidden",
    [
        ("mobilenetv2", 224, models.MOBILENETV2_STAGES, 1.0, 32, 1280, 10, None),
        ("mobilenetv2_rnnpool", 224, models.MOBILENETV2_STAGES[3:], 1.0, 32, 1280, 10, 16),
        ("mobilenetv2_vww", 224, models.MOBILENETV2_STAGES, 0.35, 8, 320, 2, None),
        ("mobilenetv2_rnnpool_vww", 224, models.MOBILENETV2_STAGES[3:], 0.35, 8, 320, 2, 8),
    ],
)
def test_classification_counts_equal_the_closed_form(zoo, name, size, stages, alpha, stem, last, classes, hidden):
    a = analyze(zoo[name])
    assert (a.total_params, a.total_macs) == _mbv2_closed_form(size, stages, alpha, stem, last, classes, hidden)
    bn_stats = sum(
        2 * int(layer.moving_mean.shape[0]) for layer in zoo[name].layers if isinstance(layer, L.BatchNormalization)
    )
    assert a.total_params == zoo[name].count_params() - bn_stats


def test_face_m4_counts_by_hand(zoo):
    a = analyze(zoo["face_m4"])
    rnnpool = 29 * 39 * rnnpool_patch_macs(8, 8, 4, 16, 16)
    blocks = (
        1200 * (64 * 128 + 128 * 9 + 128 * 32)
        + 1200 * (32 * 64 + 64 * 9 + 64 * 32)
        + 1200 * 32 * 64
        + 300 * (64 * 9 + 64 * 64)
        + 300 * (64 * 128 + 128 * 9 + 128 * 64)
    )
    heads = 1200 * 9 * 32 * (4 + 4) + 1200 * 9 * 32 * (4 + 2) + 2 * 300 * 9 * 64 * (4 + 2)
    assert a.total_macs == 120 * 160 * 9 * 4 + rnnpool + blocks + heads
    assert a.layers[[layer.name for layer in a.layers].index("rnnpool")].macs == rnnpool


MB, KB = MIB, KIB
# (label, builder, kwargs, quantity, paper value, where in the paper). peak_f32 / peak_int8: appendix E.2
# convention with 4 / 1 byte per element; peak_int8_resident keeps the input image in RAM.
PAPER = [
    ("MobileNetV2 params", "mobilenetv2", {}, "params", 2.20e6, "Table 1/8"),
    ("MobileNetV2 MAdds", "mobilenetv2", {}, "macs", 0.300e9, "Table 1/8/2"),
    ("MobileNetV2 peak", "mobilenetv2", {}, "peak_f32", 2.29 * MB, "Table 1, E.2.2"),
    ("MobileNetV2-RNNPool params", "mobilenetv2_rnnpool", {}, "params", 2.00e6, "Table 1/8"),
    ("MobileNetV2-RNNPool MAdds", "mobilenetv2_rnnpool", {}, "macs", 0.226e9, "Table 2/18"),
    ("MobileNetV2-RNNPool peak", "mobilenetv2_rnnpool", {}, "peak_f32", 0.24 * MB, "Table 1/8, E.2.2"),
    ("MobileNetV2 + last RNNPool params", "mobilenetv2", {"last_rnnpool": True}, "params", 2.9e6, "Table 2"),
    ("MobileNetV2 + last RNNPool MAdds", "mobilenetv2", {"last_rnnpool": True}, "macs", 0.334e9, "Table 2"),
    (
        "MobileNetV2-RNNPool + last RNNPool params",
        "mobilenetv2_rnnpool",
        {"last_rnnpool": True},
        "params",
        2.7e6,
        "Table 2",
    ),
    ("VWW MobileNetV2-0.35x params", "mobilenetv2_vww", {}, "params", 296e3, "Table 2"),
    ("VWW MobileNetV2-0.35x MAdds", "mobilenetv2_vww", {}, "macs", 53.2e6, "Table 2"),
    ("VWW MobileNetV2-0.35x peak", "mobilenetv2_vww", {}, "peak_int8", 250 * KB, "section 5.2 ('250 KB')"),
    ("VWW RNNPool params", "mobilenetv2_rnnpool_vww", {}, "params", 255e3, "Table 2"),
    ("VWW RNNPool MAdds", "mobilenetv2_rnnpool_vww", {}, "macs", 37.7e6, "Table 2"),
    ("VWW RNNPool peak", "mobilenetv2_rnnpool_vww", {}, "peak_int8", 33.68 * KB, "section 5.2"),
    ("Face-Quant params", "face_quant", {}, "params", 0.07e6, "Table 4"),
    ("Face-Quant MAdds", "face_quant", {}, "macs", 0.12e9, "Table 4"),
    ("Face-Quant peak", "face_quant", {}, "peak_int8", 225 * KB, "Table 4, E.2.3"),
    ("Face-M4 MAdds", "face_m4", {}, "macs", 70e6, "Table 5"),
    ("Face-M4 peak", "face_m4", {}, "peak_int8_resident", 188 * KB, "Table 5"),
]

# Differences we cannot remove (strict xfail: the test fails if they ever disappear, so this list stays true).
KNOWN_GAPS = {
    "MobileNetV2-RNNPool params": (
        "ours 2.217M (+10.8%). Table 10's layers remove MobileNetV2's stages 1-3 (~55K parameters) and add the "
        "RNNPool (1.3K) and a wider first 64-channel block (+33K), 2.237M -> 2.217M; the paper reports a 0.2M "
        "drop (2.2M -> 2.0M, also 3.4M -> 3.2M on ImageNet-1K) that the published architecture cannot produce"
    ),
    "MobileNetV2-RNNPool MAdds": (
        "ours 263.6M (+16.6%): the layers other than the RNNPool add up to 214.3M, so the paper's 226M leaves "
        "~12M for the RNNPool, while Algorithm 1 counted per patch gives 49.3M (729 x 67,584); the paper does "
        "not state how it counted the RNNPool"
    ),
    "MobileNetV2-RNNPool + last RNNPool params": (
        "ours 2.935M (+8.7%, inside 10%) -- listed because it inherits the 0.2M gap above"
    ),
    "VWW RNNPool params": (
        "ours 281.9K (+10.5%); we build EdgeML's VWW model layer for layer (width 0.35, 8-channel stem, "
        "RNNPool h=8, last conv 320); the paper's 255K cannot be reproduced from it"
    ),
    "VWW RNNPool peak": (
        "ours 29,792 B = 28*28*32 + 14*14*24 (E.2: the MBConv after the RNNPool); the paper's 33.68 KB "
        "= 34,496 B = 28*28*32 + 2*14*14*24, one more output-sized buffer than its own convention gives"
    ),
    "Face-Quant MAdds": (
        "ours 179.7M (+50%): the layers other than the RNNPool add up to 103.3M; Algorithm 1 per patch gives "
        "76.4M for the RNNPool (4,661 x 16,384); the paper's 0.12G implies ~17M, as for MobileNetV2"
    ),
    "Face-M4 MAdds": (
        "ours 103.3M dense (38.5M + RNNPool 64.9M); Table 5's 70M is for the sparse-trained model "
        "(W1 50%, other RNNPool matrices 30% non-zero; those densities give 59.8M by our count)"
    ),
}
# "+ last RNNPool params" is within 10 %: not a gap to mark.
KNOWN_GAPS.pop("MobileNetV2-RNNPool + last RNNPool params")


def _quantity(model, quantity):
    if quantity == "params":
        return analyze(model).total_params
    if quantity == "macs":
        return analyze(model).total_macs
    if quantity == "peak_f32":
        return analyze(model, 4).peak_bytes
    if quantity == "peak_int8":
        return analyze(model, 1).peak_bytes
    if quantity == "peak_int8_resident":
        return analyze(model, 1, resident_input=True).peak_bytes
    raise AssertionError(quantity)


@pytest.mark.parametrize(
    "label,name,kwargs,quantity,paper,where",
    [
        pytest.param(
            *row,
            id=row[0],
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[row[0]])] if row[0] in KNOWN_GAPS else [],
        )
        for row in PAPER
    ],
)
def test_numbers_match_the_paper_within_10_percent(zoo, label, name, kwargs, quantity, paper, where):
    model = zoo[name] if not kwargs else models.build_zoo_model(name, **kwargs)
    ours = _quantity(model, quantity)
    assert abs(ours - paper) / paper <= 0.10, f"{label} ({where}): ours {ours:,} vs paper {paper:,.0f}"


def test_exact_paper_convention_peaks(zoo):
    """The E.2 sums the paper spells out, byte for byte."""
    assert analyze(zoo["mobilenetv2"], 4).peak_bytes == (112 * 112 * 32 + 112 * 112 * 16) * 4
    assert analyze(zoo["mobilenetv2_rnnpool"], 4).peak_bytes == (28 * 28 * 64 + 14 * 14 * 64) * 4
    assert analyze(zoo["face_quant"], 1).peak_bytes == 80 * 60 * 32 + 80 * 60 * 16 == 225 * KIB
    m4 = analyze(zoo["face_m4"], 1, resident_input=True)
    assert m4.peak_bytes == 320 * 240 + 40 * 30 * 64 + 40 * 30 * 32  # 187.5 KiB
    assert m4.peak_unit.kind == "mbconv" and "block1_expand" in m4.peak_unit.layers
    assert analyze(zoo["face_m4"], 1).peak_bytes == 40 * 30 * 64 + 40 * 30 * 32


# -- runs, trains, serializes -------------------------------------------------------------------------


def test_every_zoo_model_runs_a_forward_pass(zoo):
    rng = np.random.default_rng(0)
    for name, model in zoo.items():
        x = rng.random((1,) + tuple(model.input_shape[1:]), dtype=np.float32)
        outputs = model(x, training=False)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        assert [tuple(o.shape[1:]) for o in outputs] == [tuple(t.shape[1:]) for t in model.outputs], name
        assert all(np.isfinite(o.numpy()).all() for o in outputs), name


def test_replicate_pad_copies_the_last_row_and_column():
    m = models.rnnpool_face_m4((48, 64, 1))
    probe = keras.Model(m.input, [m.get_layer("rnnpool").output, m.get_layer("rnnpool_pad_cols").output])
    pooled, padded = (t.numpy() for t in probe(np.random.default_rng(1).random((2, 48, 64, 1), dtype=np.float32)))
    assert pooled.shape == (2, 5, 7, 64) and padded.shape == (2, 6, 8, 64)
    np.testing.assert_array_equal(padded[:, :5, :7], pooled)
    np.testing.assert_array_equal(padded[:, 5, :7], pooled[:, 4])
    np.testing.assert_array_equal(padded[:, :5, 7], pooled[:, :, 6])
    assert np.array_equal(padded[:, 5, 7], pooled[:, 4, 6])


def _train_step_changes_weights(model, x, ys, loss):
    model.compile(keras.optimizers.SGD(0.05), loss=loss)
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, ys, epochs=1, batch_size=len(x), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert changed > len(before) // 2


def test_small_models_train_a_step():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(2)
    clf = models.mobilenetv2_rnnpool((64, 64, 3), num_classes=3, alpha=0.35, rnnpool_hidden=4)
    assert clf.output_shape == (None, 3)
    _train_step_changes_weights(
        clf,
        rng.random((4, 64, 64, 3), dtype=np.float32),
        rng.integers(0, 3, 4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    face = models.rnnpool_face_m4((48, 64, 1), rnnpool_hidden=4, l2norm=True)
    x = rng.random((2, 48, 64, 1), dtype=np.float32)
    targets = [rng.standard_normal((2,) + tuple(o.shape[1:])).astype(np.float32) for o in face.outputs]
    _train_step_changes_weights(face, x, targets, "mse")


def test_serialization_round_trip(tmp_path):
    from rnnpool_tflm.quantize.model import load_model

    x = np.random.default_rng(3).random((2, 48, 64, 1), dtype=np.float32)
    for model in (
        models.rnnpool_face_m4((48, 64, 1), l2norm=True),
        models.rnnpool_face_quant((40, 56, 3), rnnpool_hidden=4),
        models.mobilenetv2_rnnpool((40, 40, 3), num_classes=4, alpha=0.5, last_rnnpool=True),
    ):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = load_model(str(path))
        data = np.resize(x, (2,) + tuple(model.input_shape[1:])).astype(np.float32)
        expected, got = _outputs(model, data), _outputs(loaded, data)
        assert len(expected) == len(got)
        for a, b in zip(expected, got, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
        assert analyze(loaded).total_params == analyze(model).total_params


def _outputs(model, x):
    out = model(x, training=False)
    return [o.numpy() for o in (out if isinstance(out, list) else [out])]


# -- argument checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "builder,kwargs,match",
    [
        (models.mobilenetv2_rnnpool, {"input_shape": (224, 224)}, "input_shape"),
        (models.mobilenetv2_rnnpool, {"input_shape": (10, 10, 3)}, "too small"),
        (models.mobilenetv2_rnnpool, {"num_classes": 0}, "num_classes"),
        (models.mobilenetv2_rnnpool, {"num_classes": True}, "num_classes"),
        (models.mobilenetv2_rnnpool, {"alpha": 0.0}, "alpha"),
        (models.mobilenetv2_rnnpool, {"alpha": float("nan")}, "alpha"),
        (models.mobilenetv2_rnnpool, {"rnnpool_hidden": 2.5}, "rnnpool_hidden"),
        (models.mobilenetv2_rnnpool, {"dropout": 1.0}, "dropout"),
        (models.mobilenetv2_baseline, {"stem_channels": -8}, "stem_channels"),
        (models.mobilenetv2_baseline, {"input_shape": (224, 0, 3)}, "input_shape"),
        (models.rnnpool_face_m4, {"input_shape": (240, 320, 3)}, "1 channel"),
        (models.rnnpool_face_m4, {"input_shape": (12, 320, 1)}, "too small"),
        (models.rnnpool_face_m4, {"num_classes": 1}, "num_classes"),
        (models.rnnpool_face_quant, {"input_shape": (480, 640, 1)}, "3 channel"),
        (models.rnnpool_face_quant, {"rnnpool_hidden": 0}, "rnnpool_hidden"),
        (models.rnnpool_face_m4, {"l2norm": "yes"}, "l2norm"),
        (models.mobilenetv2_baseline, {"last_rnnpool": 1}, "last_rnnpool"),
        (models.mobilenetv2_rnnpool, {"last_channels": 3, "last_rnnpool": True}, "last_channels >= 4"),
        (models.build_zoo_model, {"name": "resnet"}, "unknown zoo model"),
    ],
)
def test_bad_arguments_are_clear_value_errors(builder, kwargs, match):
    with pytest.raises(ValueError, match=match):
        builder(**kwargs)


# -- quantization and conversion of what the zoo adds ------------------------------------------------


def _op_names(model_bytes):
    from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

    m = schema.ModelT.InitFromPackedBuf(model_bytes, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return {
        c.customCode.decode() if c.customCode else names[max(c.builtinCode, c.deprecatedBuiltinCode)]
        for c in m.operatorCodes
    }


def _int8(model, samples):
    """Float-I/O int8 model calibrated on `samples` (so they are inside every range)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def test_replicate_pad_is_builtin_int8_and_runs_in_tflm():
    from rnnpool_tflm.deploy.host_run import run_interpreter

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 7, 3))
    x = L.Conv2D(8, 1, name="mix")(inputs)
    outputs = models.replicate_pad_bottom_right(x, "pad")
    model = keras.Model(inputs, outputs)
    samples = np.random.default_rng(4).random((8, 5, 7, 3), dtype=np.float32)
    flatbuffer = _int8(model, samples)
    assert _op_names(flatbuffer) <= {"CONV_2D", "STRIDED_SLICE", "CONCATENATION", "QUANTIZE", "DEQUANTIZE"}
    assert {"STRIDED_SLICE", "CONCATENATION"} <= _op_names(flatbuffer)
    x = samples[:1]
    (y,) = run_interpreter(flatbuffer, [x], 1)
    assert y.shape == (1, 6, 8, 8)
    np.testing.assert_array_equal(y[:, 5], y[:, 4])
    np.testing.assert_array_equal(y[:, :, 7], y[:, :, 6])
    expected = model(x).numpy()
    np.testing.assert_array_equal(expected[:, 5], expected[:, 4])
    # int8 rounding only: a few output steps of (max - min) / 255
    step = (expected.max() - min(expected.min(), 0.0)) / 255
    np.testing.assert_allclose(y, expected, atol=4 * step)


def test_l2norm_converts_to_builtin_ops():
    import tensorflow as tf

    inputs = keras.Input((6, 8, 5))
    model = keras.Model(inputs, models.L2Norm(8.0)(L.Conv2D(5, 1)(inputs)))
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    assert {"L2_NORMALIZATION", "MUL"} <= _op_names(flatbuffer)
    assert not any(name.startswith("Flex") for name in _op_names(flatbuffer))
    x = np.random.default_rng(5).standard_normal((1, 6, 8, 5)).astype(np.float32)
    y = model(x).numpy()
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), 8.0, rtol=1e-5)


def test_face_m4_quantizes_and_converts_to_one_rnnpool_op():
    qat = quantize.quantize_model(models.rnnpool_face_m4((48, 64, 1)))
    x = np.random.default_rng(6).random((2, 48, 64, 1), dtype=np.float32)
    assert all(np.isfinite(o).all() for o in _outputs(qat, x))
    flatbuffer = convert.convert(qat)
    ops = _op_names(flatbuffer)
    # The replicate pad folds into RNNPool, the four blocks become InvertedResidual ops; the stem and
    # the heads stay convolutions.
    assert ops == {"RNNPool", "CONV_2D", "InvertedResidual"}, ops
