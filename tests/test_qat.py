"""QAT: the RNNPool integer simulation against the golden reference, the QuantizeConfig,
quantize_model / annotate / apply, errors, save/load (issue 4)."""

import math

import models_for_tests as mft
import numpy as np
import pytest
import tensorflow as tf

from rnnpool_tflm.core.config import RNNPoolConfig
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.core.weights import RNNPoolWeights
from rnnpool_tflm.layer.forward import FastGRNNParams, FloatCells, rnnpool_forward
from rnnpool_tflm.layer.rnnpool import CELL_WEIGHTS, RNNPool
from rnnpool_tflm.quantize import model as quantize
from rnnpool_tflm.quantize import simulation as rnnpool_qat
from rnnpool_tflm.quantize import tfmot_compat
from rnnpool_tflm.reference import derive_multipliers, quantize_multiplier, quantize_rnnpool, rnnpool_int8
from rnnpool_tflm.reference.int8_ref import rq as rq_reference
from rnnpool_tflm.reference.quant_params import symmetric_quantize

# (patch, stride, hidden, padding, gate, update, zeta, nu, channels, input rows x cols)
CASES = [
    ((8, 8), (4, 4), (16, 16), "valid", "sigmoid", "tanh", 100.0, -100.0, 8, (16, 16)),
    ((3, 5), (2, 3), (6, 5), "same", "hard_sigmoid", "hard_tanh", 1.0, -2.0, 3, (11, 9)),
    ((4, 4), (1, 2), (7, 9), "valid", "sigmoid", "hard_tanh", 0.5, 0.3, 5, (9, 10)),  # q1 = q2 = 12
    ((2, 6), (2, 2), (4, 3), "same", "hard_sigmoid", "tanh", -1.0, 2.5, 2, (7, 13)),  # sigmoid(nu) ~ 1: q = 11
]


def _weights_dict(w: RNNPoolWeights):
    d = {}
    for i, cell in ((1, w.rnn1), (2, w.rnn2)):
        for name in CELL_WEIGHTS:
            d[f"{name}{i}"] = tf.constant(np.asarray(getattr(cell, name), np.float32))
    return d


@pytest.mark.parametrize("case", range(len(CASES)))
def test_qat_forward_equals_golden_int8(case):
    """Same float weights, same input grid: the QAT final states, requantized like the op,
    are the golden rnnpool_int8 output, element for element (0 of N differ)."""
    patch, stride, hidden, padding, gate, update, zeta, nu, k, (rows, cols) = CASES[case]
    rng = np.random.default_rng(case)
    cfg = RNNPoolConfig.create(patch, stride, hidden, padding, gate, update)
    w = RNNPoolWeights.random(k, *hidden, rng, scale=1.5, zeta=zeta, nu=nu)
    s_x, zp_x = float(rng.uniform(0.005, 0.05)), int(rng.integers(-60, 60))
    p = quantize_rnnpool(w, cfg, s_x, zp_x, float(rng.uniform(0.004, 0.02)), int(rng.integers(-20, 20)))
    x_q = rng.integers(-128, 128, size=(3, rows, cols, k)).astype(np.int8)
    golden = rnnpool_int8(x_q, p)
    x = (np.float32(s_x) * (x_q.astype(np.float64) - zp_x)).astype(np.float32)
    rnn1, rnn2 = rnnpool_qat.layer_cells(_weights_dict(w))
    out = rnnpool_qat.rnnpool_qat(tf.constant(x), tf.constant(np.float32(s_x)), rnn1, rnn2, cfg)
    mult = derive_multipliers(p)
    assert (int(out.q1), int(out.q2)) == (mult.q1, mult.q2)
    states = out.states.numpy()
    # The float output is exactly g / 2^q2.
    np.testing.assert_array_equal(out.output.numpy(), states * 2.0**-mult.q2)
    y = np.clip(rq_reference(states, *mult.y) + p.output_zero_point, -128, 127)
    mismatches = int(np.count_nonzero(y != golden))
    print(f"case {case}: {mismatches} of {golden.size} outputs differ from the golden reference")
    assert mismatches == 0


def test_tf_quantize_multiplier_matches_reference():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            10.0 ** rng.uniform(-12, 8, 2000),
            [0.5, 1.0, 2.0**-31, 2.0**-32, 0.9999999999, 1.0 - 2.0**-33, 3.0 * 2.0**-40],
        ]
    )
    mult, shift = rnnpool_qat.quantize_multiplier(tf.constant(values, tf.float64))
    for v, m, n in zip(values, mult.numpy(), shift.numpy(), strict=True):
        if math.frexp(v)[1] > 30:
            continue
        assert (int(m), int(n)) == quantize_multiplier(v), v


def test_weight_quantizer_is_the_converters_grid():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((12, 7)).astype(np.float32)
    w[:, 3] = 0.0  # an all-zero channel
    fq = quantize.RNNPoolWeightQuantizer()(tf.constant(w), training=True, weights={}).numpy()
    q, scale = symmetric_quantize(w.T, per_channel=True)  # [out, in]
    np.testing.assert_allclose(fq, (q.astype(np.float64) * scale[:, None]).T.astype(np.float32), rtol=0, atol=0)


def test_gradients_follow_the_float_fastgrnn():
    """Straight-through: the gradient of the integer simulation points where the float
    layer's does (evaluated on the same grid values)."""
    rng = np.random.default_rng(2)
    cfg = RNNPoolConfig.create(4, 2, (6, 5))
    w = RNNPoolWeights.random(3, 6, 5, rng, scale=1.0, zeta=1.0, nu=-3.0)
    variables = {k: tf.Variable(v) for k, v in _weights_dict(w).items()}
    x = tf.constant(np.round(rng.uniform(0, 1, (4, 8, 8, 3)) / 0.01).astype(np.float32) * 0.01)

    def qat_loss():
        rnn1, rnn2 = rnnpool_qat.layer_cells(variables)
        return tf.reduce_sum(tf.sin(3.0 * rnnpool_qat.rnnpool_qat(x, tf.constant(0.01), rnn1, rnn2, cfg).output))

    def float_loss():
        cell = lambda i: FastGRNNParams(*(variables[f"{n}{i}"] for n in CELL_WEIGHTS))  # noqa: E731
        return tf.reduce_sum(tf.sin(3.0 * rnnpool_forward(x, cell(1), cell(2), cfg)))

    for loss in (qat_loss, float_loss):
        with tf.GradientTape() as tape:
            value = loss()
        grads = tape.gradient(value, list(variables.values()))
        if loss is qat_loss:
            qat_grads = grads
        else:
            float_grads = grads
    for name, gq, gf in zip(variables, qat_grads, float_grads, strict=True):
        assert gq is not None and np.all(np.isfinite(gq.numpy())), name
        a, b = gq.numpy().ravel(), gf.numpy().ravel()
        if np.linalg.norm(b) > 1e-6:
            cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
            assert cosine > 0.9, (name, cosine)


def _small_model():
    keras.utils.set_random_seed(0)
    i = keras.Input((12, 12, 2), name="x")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(i)
    x = RNNPool(4, 4, (5, 6), name="rp")(x)
    return keras.Model(i, keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x)))


def test_quantize_model_wraps_rnnpool_with_its_config_and_links_the_input():
    qat = quantize.quantize_model(_small_model())
    wrapper = mft.find_layer(qat, "rp")
    assert isinstance(wrapper.quantize_config, quantize.RNNPoolQuantizeConfig)
    assert wrapper.quantize_config.input_grid.source == "quant_conv"  # the conv's fused-ReLU fake-quant
    quantized = [v.name for v, _, _ in tfmot_compat.weight_quantizers(wrapper)]
    assert [n.split("/")[-1].split(":")[0] for n in quantized] == list(quantize.QUANTIZED_WEIGHTS)
    output = quantize.output_range(wrapper)
    assert output is not None and isinstance(output.quantizer, quantize.MovingAverageQuantizer)


def test_quantize_config_swaps_quantized_cells_into_the_qat_copy_only():
    """tfmot's pattern: the config installs what the layer computes with (here its cells);
    the float model keeps its float cells and its outputs."""
    model = _small_model()
    x = mft.random_images(model, 4)
    before = model(x).numpy()
    qat = quantize.quantize_model(model)
    float_layer, wrapped = model.get_layer("rp"), mft.find_layer(qat, "rp").layer
    assert wrapped is not float_layer
    assert isinstance(float_layer.cells, FloatCells)
    assert isinstance(wrapped.cells, rnnpool_qat.QuantizedCells)
    np.testing.assert_array_equal(model(x).numpy(), before)


def test_wrapper_forward_is_the_int8_op_up_to_output_rounding():
    """Through the QuantizeWrapper (inference mode): same result as the golden int8 op
    with the converter's output grid, but for rare +-1 LSB differences of TF's float
    FakeQuant against the op's (M, n) requantization; counted here."""
    qat = quantize.quantize_model(_small_model())
    x = mft.random_images(qat, 32)
    quantize.calibrate_ranges(qat, x)
    wrapper = mft.find_layer(qat, "rp")
    producer = keras.Model(qat.inputs, qat.get_layer("quant_conv").output)
    x_rnn = producer(x, training=False).numpy()
    y = wrapper(tf.constant(x_rnn), training=False).numpy()
    grid = wrapper.quantize_config.input_grid
    s_x, zp_x = quantize.tflite_grid(grid.min_var.numpy(), grid.max_var.numpy())
    assert s_x == grid.scale().numpy()
    out_vars = quantize.output_range(wrapper).variables
    s_y, zp_y = quantize.tflite_grid(out_vars["min_var"].numpy(), out_vars["max_var"].numpy())
    layer = wrapper.layer
    p = quantize_rnnpool(layer.get_rnnpool_weights(), layer.rnnpool_config, float(s_x), zp_x, float(s_y), zp_y)
    x_q = np.clip(np.round(x_rnn / np.float32(s_x)) + zp_x, -128, 127).astype(np.int8)
    golden = rnnpool_int8(x_q, p).astype(np.int64)
    y_q = np.round(y / s_y).astype(np.int64) + zp_y
    diff = np.abs(y_q - golden)
    print(f"wrapper vs golden: {np.count_nonzero(diff)} of {diff.size} outputs differ by 1 LSB")
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= max(2, diff.size // 200)


def test_sequential_and_partial_quantization():
    seq = mft.sequential_rnnpool_first()
    qat = quantize.quantize_model(seq)
    assert mft.find_layer(qat, "rp").quantize_config.input_grid.source.startswith("quantize_layer")
    # Partial: only the RNNPool annotated; tfmot quantizes its producer's output for it.
    keras.utils.set_random_seed(0)
    i = keras.Input((12, 12, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(i)
    x = quantize.quantize_annotate_layer(RNNPool(4, 4, (5, 6), name="rp"))(x)
    model = keras.Model(i, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    qat = quantize.quantize_apply(model)
    wrapper = mft.find_layer(qat, "rp")
    assert isinstance(wrapper.quantize_config, quantize.RNNPoolQuantizeConfig)
    assert wrapper.quantize_config.input_grid.source == "quant_conv"
    assert np.all(np.isfinite(qat(mft.random_images(qat, 4)).numpy()))


def test_unquantizable_layer_error_names_the_layer():
    keras.utils.set_random_seed(0)
    i = keras.Input((12, 12, 2))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="doubler")(i)
    x = RNNPool(4, 4, (5, 6))(x)
    model = keras.Model(i, keras.layers.Flatten()(x))
    with pytest.raises(RNNPoolError, match="doubler"):
        quantize.quantize_model(model)
    # A BatchNormalization with no convolution to fold into: tfmot's error, named.
    i = keras.Input((12, 12, 2))
    x = keras.layers.BatchNormalization(name="lonely_bn")(i)
    x = RNNPool(4, 4, (5, 6))(x)
    with pytest.raises(RNNPoolError, match="lonely_bn"):
        quantize.quantize_model(keras.Model(i, keras.layers.Flatten()(x)))


def test_qat_model_saves_and_loads(tmp_path):
    qat = quantize.quantize_model(_small_model())
    x = mft.random_images(qat, 16)
    quantize.calibrate_ranges(qat, x)
    expected = qat.predict(x, verbose=0)
    for name in ("model.keras", "model.h5"):
        qat.save(tmp_path / name)
        loaded = quantize.load_model(tmp_path / name)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    # Loaded without load_model's linking step, the RNNPool does not know its input grid: a clear error.
    with quantize.quantize_scope(), tfmot_compat.loading_fixes():
        raw = keras.models.load_model(tmp_path / "model.keras")
    with pytest.raises(Exception, match="not linked"):
        raw(x)


def test_calibrate_ranges_changes_only_ranges():
    qat = quantize.quantize_model(_small_model())
    before = {v.name: v.numpy() for v in qat.variables}
    quantize.calibrate_ranges(qat, mft.random_images(qat, 16))
    changed = {name for name, v in ((v.name, v.numpy()) for v in qat.variables) if not np.array_equal(before[name], v)}
    assert changed and all(name.endswith(("_min:0", "_max:0")) for name in changed), changed
    assert "quant_rp/output_min:0" in changed or any("rp" in n and "output" in n for n in changed)
