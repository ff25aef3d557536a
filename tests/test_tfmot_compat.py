"""rnnpool_tflm.quantize.tfmot_compat: one test per private tfmot access or patch, each
failing when tfmot behaves differently from the 0.8.1 the module was written for."""

import contextlib
import inspect
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.layer.rnnpool import RNNPool
from rnnpool_tflm.quantize import model as quantize
from rnnpool_tflm.quantize import tfmot_compat as compat

L = keras.layers
_tfmot = tfmot.quantization.keras


# -- the version guard ------------------------------------------------------------------------------


def test_installed_tfmot_is_the_tested_one_and_has_every_private_name():
    assert tfmot.__version__ == compat.TESTED_VERSION
    assert compat.differences() == []
    compat.check_version(compat.TESTED_VERSION)


def test_another_version_fails_naming_the_module_and_the_versions():
    with pytest.raises(compat.TfmotVersionError) as info:
        compat.check_version("0.9.0")
    message = str(info.value)
    assert "rnnpool_tflm.quantize.tfmot_compat" in message and "0.9.0" in message and "0.8.1" in message
    assert compat.UNTESTED_ENV in message
    assert isinstance(info.value, RNNPoolError)  # the CLI prints it as one line
    with pytest.warns(UserWarning, match="untested"):
        compat.check_version("0.9.0", allow_untested=True)


def test_a_vanished_private_name_is_named_even_when_untested_use_is_allowed(monkeypatch):
    from tensorflow_model_optimization.python.core.quantization.keras import quantize_aware_activation

    monkeypatch.delattr(quantize_aware_activation.QuantizeAwareActivation, "_POST_QUANT_ACTIVATIONS")
    assert compat.differences() == ["quantize_aware_activation:QuantizeAwareActivation._POST_QUANT_ACTIVATIONS is gone"]
    with pytest.raises(compat.TfmotVersionError, match="_POST_QUANT_ACTIVATIONS is gone"):
        compat.check_version("0.9.0", allow_untested=True)


def test_importing_the_package_with_another_tfmot_fails_in_the_compat_module():
    code = (
        "import rnnpool_tflm, tensorflow_model_optimization as t; t.__version__ = '0.9.0'; import rnnpool_tflm.quantize"
    )
    env = {k: v for k, v in os.environ.items() if k != compat.UNTESTED_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "rnnpool_tflm.quantize.tfmot_compat.TfmotVersionError: tensorflow-model-optimization "
        "0.9.0 is installed; rnnpool_tflm.quantize.tfmot_compat was written for 0.8.1"
    ), last


# -- activations the wrapper can quantize -------------------------------------------------------------


class _NoVariables(_tfmot.quantizers.Quantizer):
    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        return inputs

    def get_config(self):
        return {}


@pytest.mark.parametrize(
    "name",
    [
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "swish",
        "gelu",
        "elu",
        "selu",
        "softplus",
        "softsign",
        "exponential",
        "hard_sigmoid",
        "NoOpActivation",
    ],
)
def test_quantizable_activations_are_those_tfmots_wrapper_accepts(name):
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_aware_activation import (
        QuantizeAwareActivation,
    )

    activation = compat.NoOpActivation() if name == "NoOpActivation" else keras.activations.get(name)
    accepted = True
    try:
        QuantizeAwareActivation(activation, _NoVariables(), None, None)
    except ValueError:
        accepted = False
    assert accepted == (name in compat.QUANTIZABLE_ACTIVATIONS)


# -- fake-quant ranges inside a wrapped model ------------------------------------------------------------


@pytest.fixture(scope="module")
def ranged_model():
    """A QAT model with each kind of fake-quant: input, pre-activation (sigmoid),
    post-activation (linear) and output (Add)."""
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 2), name="x")
    a = L.Conv2D(3, 1, activation="sigmoid", name="conv_sig")(i)
    b = L.Conv2D(3, 1, name="conv_lin")(a)
    model = keras.Model(i, L.Add(name="add")([b, b]))
    return quantize.quantize_model(model)


def _narrowed(layer, fake_quant, x, low, high):
    """The layer's inference output before and after its range is set to [low, high]."""
    before = layer(x, training=False).numpy()
    fake_quant.variables["min_var"].assign(low)
    fake_quant.variables["max_var"].assign(high)
    return before, layer(x, training=False).numpy()


def test_input_fake_quant_holds_the_range_the_quantize_layer_applies(ranged_model):
    (layer,) = [layer for layer in ranged_model.layers if isinstance(layer, compat.QuantizeLayer)]
    fake_quant = compat.input_fake_quant(layer)
    assert (fake_quant.owner, fake_quant.stage) == (layer.name, "input")
    x = np.linspace(-3, 3, 72, dtype=np.float32).reshape(1, 6, 6, 2)
    before, after = _narrowed(layer, fake_quant, x, 0.0, 1.0)
    assert not np.array_equal(before, after)
    assert after.min() == 0.0 and after.max() == pytest.approx(1.0)
    np.testing.assert_allclose(np.round(after * 255), after * 255, atol=1e-3)  # on the grid 1/255


@pytest.mark.parametrize(
    "layer_name, stage",
    [("quant_conv_sig", "pre_activation"), ("quant_conv_lin", "post_activation"), ("quant_add", "output")],
)
def test_wrapper_fake_quants_hold_the_ranges_the_wrapper_applies(ranged_model, layer_name, stage):
    layer = ranged_model.get_layer(layer_name)
    found = compat.activation_fake_quants(layer) + [f for f in [compat.output_fake_quant(layer)] if f is not None]
    assert [f.stage for f in found] == [stage]
    fake_quant = found[0]
    assert fake_quant.owner == layer_name
    x = np.random.default_rng(0).uniform(-30, 30, (4, 6, 6, 3 if stage == "post_activation" else 2))
    x = x.astype(np.float32)
    if stage == "output":
        x = [x[..., :2], x[..., :2]]
    before, after = _narrowed(layer, fake_quant, x, -0.25, 0.25)
    step = 0.5 / 255  # the range is nudged by up to one step to put zero on the grid
    low, high = -0.25 - step, 0.25 + step
    if stage == "pre_activation":  # sigmoid after the fake-quant
        low, high = 1 / (1 + np.exp(-low)), 1 / (1 + np.exp(-high))
    assert before.min() < low - 0.1 and before.max() > high + 0.1
    assert low <= after.min() < after.max() <= high


def test_weight_quantizers_are_the_wrappers_float_weights_and_quantizers(ranged_model):
    layer = ranged_model.get_layer("quant_conv_lin")
    ((weight, quantizer, variables),) = compat.weight_quantizers(layer)
    assert isinstance(weight, tf.Variable) and weight.name == "conv_lin/kernel:0"
    assert any(weight is w for w in layer.trainable_weights)
    assert isinstance(quantizer, _tfmot.quantizers.Quantizer) and set(variables) == {"min_var", "max_var"}


# -- the scheme's pieces -----------------------------------------------------------------------------------


def test_layout_transform_list_mirrors_tfmots():
    source = inspect.getsource(_tfmot.default_8bit.Default8BitQuantizeLayoutTransform.apply)
    assert tuple(re.findall(r"default_8bit_transforms\.(\w+)\(\)", source)) == compat.DEFAULT_8BIT_LAYOUT_TRANSFORMS
    marker = object()
    transforms = compat.default_8bit_layout_transforms({"LayerReLUQuantize": [marker, marker]})
    assert len(transforms) == len(compat.DEFAULT_8BIT_LAYOUT_TRANSFORMS) + 1
    assert [type(t).__name__ for t in transforms[:-3]] == list(compat.DEFAULT_8BIT_LAYOUT_TRANSFORMS[:-2])
    assert transforms[-3:-1] == [marker, marker] and type(transforms[-1]).__name__ == "LayerReluActivationQuantize"
    with pytest.raises(ValueError, match="NoSuchTransform"):
        compat.default_8bit_layout_transforms({"NoSuchTransform": []})


def test_has_custom_quantize_config_reads_the_layer_node_metadata():
    node = _tfmot.graph_transformations.transforms.LayerNode
    assert compat.has_custom_quantize_config(node({"class_name": "Conv2D"}, metadata={"quantize_config": object()}))
    assert not compat.has_custom_quantize_config(node({"class_name": "Conv2D"}, metadata={}))


def test_serialized_noop_activation_deserializes_to_noop():
    config = compat.serialize_activation(compat.NoOpActivation())
    activation = keras.activations.deserialize(config, custom_objects={"NoOpActivation": compat.NoOpActivation})
    assert isinstance(activation, compat.NoOpActivation)


def test_conv_relu_keeps_weight_quantizers_only_with_the_projects_scheme():
    """tfmot's own rule still leaves a Conv2D before a ReLU with float weights (why
    quantize.scheme replaces it); ours quantizes them and fuses the ReLU."""
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 2))
    model = keras.Model(i, L.ReLU(name="relu")(L.Conv2D(3, 1, name="conv")(i)))
    tfmots = _tfmot.quantize_model(model).get_layer("quant_conv")
    ours = quantize.quantize_model(model).get_layer("quant_conv")
    assert compat.weight_quantizers(tfmots) == []
    assert [w.name for w, _, _ in compat.weight_quantizers(ours)] == ["conv/kernel:0"]
    assert compat.activation_fake_quants(ours) == [] and compat.output_fake_quant(ours) is None


def test_unsupported_layer_reads_quantize_applys_error():
    i = keras.Input((6, 6, 2))
    x = L.BatchNormalization(name="lonely_bn")(i)
    annotated = _tfmot.quantize_annotate_model(keras.Model(i, L.Flatten()(x)))
    with pytest.raises(RuntimeError) as info:
        _tfmot.quantize_apply(annotated)
    assert compat.unsupported_layer(info.value) == "lonely_bn"
    assert compat.unsupported_layer(RuntimeError("something else")) is None


# -- patches ------------------------------------------------------------------------------------------------


def test_moving_average_decay_replaces_tfmots_fixed_decay():
    x = tf.constant(np.linspace(-1, 2, 16, dtype=np.float32))

    def range_after_one_step():
        quantizer = _tfmot.quantizers.MovingAverageQuantizer(8, per_axis=False, symmetric=False, narrow_range=False)
        variables = quantizer.build(x.shape, "t", L.Layer())
        quantizer(x, True, weights=variables)
        return float(variables["min_var"].numpy()), float(variables["max_var"].numpy())

    # tfmot: ranges start at [-6, 6] and move with a fixed decay 0.999
    assert range_after_one_step() == pytest.approx((-6 * 0.999 - 0.001, 6 * 0.999 + 2 * 0.001), abs=1e-6)
    with compat.moving_average_decay(0.0):
        assert range_after_one_step() == (-1.0, 2.0)
    with compat.moving_average_decay(0.5):
        assert range_after_one_step() == pytest.approx((-3.5, 4.0))


@pytest.fixture(scope="module")
def saved_qat_model(tmp_path_factory):
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 2))
    x = L.Conv2D(3, 3, padding="same", activation="relu")(i)
    x = RNNPool(4, 4, (5, 6), name="rp")(x)
    qat = quantize.quantize_model(keras.Model(i, L.Dense(2)(L.Flatten()(x))))
    folder = tmp_path_factory.mktemp("saved")
    for name in ("model.keras", "model.h5"):
        qat.save(folder / name)
    return folder


def _load(path, fix=contextlib.nullcontext):
    with quantize.quantize_scope(), fix():
        return quantize.link_input_quantizers(keras.models.load_model(path))


def test_h5_loading_still_needs_the_wrapper_build_fix(saved_qat_model):
    with pytest.raises(ValueError, match="[Ss]hape mismatch"):  # tfmot fixed it: drop the patch
        _load(saved_qat_model / "model.h5", compat.quantize_layer_built_once)
    _load(saved_qat_model / "model.h5", compat.wrapper_builds_inner_layer_first)


def test_keras_loading_still_needs_the_quantize_layer_fix(saved_qat_model):
    with pytest.raises(ValueError, match="expected 5 variables"):  # tfmot fixed it: drop the patch
        _load(saved_qat_model / "model.keras", compat.wrapper_builds_inner_layer_first)
    with pytest.raises(ValueError, match=r"expected \d+ variables"):  # the wrapper fix is needed too
        _load(saved_qat_model / "model.keras", compat.quantize_layer_built_once)
    _load(saved_qat_model / "model.keras", compat.loading_fixes)


# -- tf-keras internals of the same path ----------------------------------------------------------------


def test_inferring_output_signature_only_while_keras_builds_a_functional_model():
    seen = []

    class Probe(L.Layer):
        def call(self, x):
            seen.append(compat.inferring_output_signature())
            return x

    probe = Probe()
    inputs = keras.Input((2,))
    keras.Model(inputs, probe(inputs))
    probe(tf.zeros((1, 2)))
    tf.function(probe)(tf.zeros((1, 2)))
    assert seen == [True, False, False]
