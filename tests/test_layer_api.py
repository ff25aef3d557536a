"""RNNPool arguments, errors, serialization and trainability."""

import numpy as np
import pytest
import tensorflow as tf

from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.layer.rnnpool import RNNPool


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(patch_size=0), "patch_size"),
        (dict(patch_size=(3, -1)), "patch_size"),
        (dict(patch_size=(2, 2, 2)), "patch_size"),
        (dict(patch_size=3, strides=0), "strides"),
        (dict(patch_size=3, hidden_dims=(4, 0)), "hidden_dims"),
        (dict(patch_size=3, padding="full"), "padding"),
        (dict(patch_size=3, gate_activation="relu"), "gate_activation"),
        (dict(patch_size=3, update_activation="sigmoid"), "update_activation"),
        (dict(patch_size=3, zeta_init=float("nan")), "zeta_init"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RNNPool(**kwargs)


def test_patch_larger_than_input_is_rejected():
    with pytest.raises(ValueError, match=r"patch_size \(5, 5\) is larger than the input \(4x6\)"):
        RNNPool(5)(np.zeros((1, 4, 6, 2), np.float32))
    # with "same" padding the input is padded, so the same patch fits
    assert RNNPool(5, 2, padding="same")(np.zeros((1, 4, 6, 2), np.float32)).shape == (1, 2, 3, 64)


@pytest.mark.parametrize("shape", [(4, 4), (2, 4, 4, 2)])  # batch + these = rank 3 and 5
def test_wrong_input_rank_is_rejected(shape):
    with pytest.raises(ValueError, match="rank 4|ndim=4"):
        RNNPool(2)(keras.Input(shape))


def test_output_shape_follows_valid_formula():
    layer = RNNPool((8, 6), (4, 3), (16, 8))
    out = layer(np.zeros((3, 120, 160, 4), np.float32))
    assert out.shape == (3, (120 - 8) // 4 + 1, (160 - 6) // 3 + 1, 32)


def _model(tmp_seed=0):
    keras.utils.set_random_seed(tmp_seed)
    inp = keras.Input((12, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = RNNPool(
        (4, 3),
        (2, 2),
        (5, 6),
        padding="same",
        gate_activation="hard_sigmoid",
        update_activation="tanh",
        zeta_init=1.5,
        nu_init=-2.0,
        train_zeta_nu=False,
    )(x)
    out = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out)


def test_get_config_round_trip():
    layer = _model().layers[2]
    clone = RNNPool.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.rnnpool_config == layer.rnnpool_config


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "h5"])
def test_save_load_round_trip_gives_identical_outputs(tmp_path, fmt):
    model = _model()
    x = np.random.default_rng(0).standard_normal((2, 12, 10, 3)).astype(np.float32)
    want = model(x).numpy()
    path = tmp_path / {"keras": "m.keras", "savedmodel": "saved", "h5": "m.h5"}[fmt]
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x).numpy(), want)
    if fmt != "savedmodel":
        assert isinstance(loaded.layers[2], RNNPool)


def test_freezing_zeta_nu_removes_them_from_trainable_weights():
    frozen = RNNPool(2, hidden_dims=3, train_zeta_nu=False)
    trainable = RNNPool(2, hidden_dims=3)
    x = np.zeros((1, 4, 4, 2), np.float32)
    frozen(x), trainable(x)
    assert len(trainable.trainable_weights) == 12
    assert len(frozen.trainable_weights) == 8
    assert not any("zeta" in w.name or "nu" in w.name for w in frozen.trainable_weights)


def test_gradients_reach_every_trainable_weight():
    layer = RNNPool((3, 2), (1, 2), (4, 3), zeta_init=0.5, nu_init=-0.5)
    x = tf.constant(np.random.default_rng(1).standard_normal((2, 5, 6, 3)), tf.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
