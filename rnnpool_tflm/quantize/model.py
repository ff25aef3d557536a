"""Quantization-aware training for models with RNNPool layers (tfmot 0.8, default 8-bit scheme).

    qat_model = quantize_model(model)          # whole model
    # or, partially:
    annotated = quantize_annotate_model(model)  # / quantize_annotate_layer(layer) per layer
    qat_model = quantize_apply(annotated)

Every layer but RNNPool follows tfmot's default 8-bit scheme (Conv2D/Dense/
DepthwiseConv2D with per-channel weights, BatchNormalization folded into the
preceding convolution, ReLU/ReLU6 fused, Add, pooling...). RNNPool gets
`RNNPoolQuantizeConfig`: symmetric per-channel int8 weight quantizers for w1, u1,
w2, u2 (narrow range, s = max|w|/127, as the converter quantizes them), an 8-bit
asymmetric moving-average output quantizer, and the layer's `quantized_forward`
hook set to the integer simulation of rnnpool_qat.py, so training sees exactly
the int8 kernel's numbers.

The simulation needs the grid its input lies on, which is set by the fake-quant
of the producing layer; `quantize_apply` links every RNNPool to it
(`link_input_quantizers`). A QAT model loaded from a file is linked by
`load_model`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from ..core.keras import keras
from ..core.errors import RNNPoolError
from ..layer.rnnpool import CELL_WEIGHTS, RNNPool
from . import simulation as rnnpool_qat

_tfmot_keras = tfmot.quantization.keras
QuantizeConfig = _tfmot_keras.QuantizeConfig
Quantizer = _tfmot_keras.quantizers.Quantizer
MovingAverageQuantizer = _tfmot_keras.quantizers.MovingAverageQuantizer

from tensorflow_model_optimization.python.core.quantization.keras import (  # noqa: E402
    quantize_annotate as _annotate_mod, quantize_aware_activation as _qaa, quantize_layer as _qlayer,
    quantize_wrapper as _qwrapper)
from tensorflow_model_optimization.python.core.quantization.keras import utils as _qutils  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_quantize_layout_transform as _layout8, default_8bit_quantize_registry as _registry8,
    default_8bit_quantize_scheme as _scheme8, default_8bit_transforms as _t8)
from tensorflow_model_optimization.python.core.quantization.keras.graph_transformations import (  # noqa: E402
    model_transformer as _model_transformer, transforms as _transforms)

QUANTIZED_WEIGHTS = ("w1", "u1", "w2", "u2")

# Layers whose output values are a subset of their input values (zero included), so
# their output lies on their input's quantization grid; tfmot gives them no quantizer.
VALUE_PRESERVING = (keras.layers.MaxPooling2D, keras.layers.GlobalMaxPooling2D, keras.layers.Reshape,
                    keras.layers.Flatten, keras.layers.Dropout, keras.layers.SpatialDropout2D,
                    keras.layers.ZeroPadding2D, keras.layers.Cropping2D, keras.layers.Permute,
                    keras.layers.ActivityRegularization)


# -- the RNNPool quantizers and QuantizeConfig ------------------------------------------

@keras.utils.register_keras_serializable(package="rnnpool_tflm")
class RNNPoolWeightQuantizer(Quantizer):
    """Symmetric per-output-channel int8 with narrow range: s = max|w|/127,
    q = clamp(round(w/s), -127, 127) (reference.quant_params.symmetric_quantize);
    gradient straight through. Weights are in Keras orientation [in, out]."""

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        return rnnpool_qat.fake_quantize_weight(inputs)

    def get_config(self):
        return {}

    def __eq__(self, other):
        return isinstance(other, RNNPoolWeightQuantizer)

    def __ne__(self, other):
        return not self.__eq__(other)


@dataclasses.dataclass
class InputGrid:
    """The fake-quant range of the tensor an RNNPool reads (its producer's quantizer)."""

    min_var: tf.Variable
    max_var: tf.Variable
    num_bits: int
    narrow_range: bool
    source: str  # the layer that owns the quantizer, for messages

    def scale(self) -> tf.Tensor:
        """The scale the TFLite converter stores for this range: (max - min) / (qmax - qmin)
        in double, rounded once to float32 (TF's own FakeQuant rounds twice in float32;
        the grid points agree, the multiplier follows the stored value)."""
        q_levels = (1 << self.num_bits) - 1 - (1 if self.narrow_range else 0)
        lo = tf.cast(tf.minimum(tf.convert_to_tensor(self.min_var), 0.0), tf.float64)
        hi = tf.cast(tf.maximum(tf.convert_to_tensor(self.max_var), 0.0), tf.float64)
        return tf.cast((hi - lo) / q_levels, tf.float32)


def tflite_grid(range_min: float, range_max: float):
    """The int8 (scale, zero point) the TFLite converter gives a fake-quant range [min, max]
    (MLIR's nudging in double: the range widened to contain 0, scale = (max - min) / 255,
    the zero point from the end with the smaller error, rounded half away from zero)."""
    rmin = min(float(np.float32(range_min)), 0.0)
    rmax = max(float(np.float32(range_max)), 0.0)
    if rmax - rmin <= np.finfo(np.float64).eps:
        return np.float32(1.0), -128
    scale = (rmax - rmin) / 255.0
    from_min, err_min = -128.0 - rmin / scale, 128.0 + abs(rmin / scale)
    from_max, err_max = 127.0 - rmax / scale, 127.0 + abs(rmax / scale)
    zero = from_min if err_min < err_max else from_max
    zero_point = int(np.clip(np.sign(zero) * np.floor(abs(zero) + 0.5), -128, 127))
    return np.float32(scale), zero_point


@keras.utils.register_keras_serializable(package="rnnpool_tflm")
class RNNPoolQuantizeConfig(QuantizeConfig):
    """How tfmot quantizes an RNNPool layer (see the module docstring)."""

    def __init__(self):
        self.input_grid: Optional[InputGrid] = None
        self._quantized_weights: Dict[str, tf.Tensor] = {}

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, name), RNNPoolWeightQuantizer()) for name in QUANTIZED_WEIGHTS]

    def set_quantize_weights(self, layer, quantize_weights):
        if len(quantize_weights) != len(QUANTIZED_WEIGHTS):
            raise ValueError(f"RNNPool expects {len(QUANTIZED_WEIGHTS)} quantized weights, "
                             f"got {len(quantize_weights)}")
        # The float variables stay on the layer (the simulation derives the exact
        # scales from them); the quantizer outputs carry the weights' gradient path.
        self._quantized_weights = dict(zip(QUANTIZED_WEIGHTS, quantize_weights))
        layer.quantized_forward = self.quantized_forward

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}

    def quantized_forward(self, layer, inputs):
        if self.input_grid is not None:
            input_scale = self.input_grid.scale()
        elif _inferring_shapes():
            input_scale = tf.constant(1.0)  # Keras only traces for the output signature; nothing runs
        else:
            raise RNNPoolError(
                f"RNNPool layer {layer.name!r}: its input quantizer is not linked; build QAT models with "
                "rnnpool_tflm.quantize.quantize_model/quantize_apply, and load saved ones with "
                "rnnpool_tflm.quantize.load_model (or call link_input_quantizers(model))")
        weights = {f"{name}{i}": getattr(layer, f"{name}{i}") for name in CELL_WEIGHTS for i in (1, 2)}
        rnn1, rnn2 = rnnpool_qat.layer_cells(weights, self._quantized_weights)
        x = tf.cast(inputs, tf.float32)
        return rnnpool_qat.rnnpool_qat(x, input_scale, rnn1, rnn2, layer.rnnpool_config).output


def _inferring_shapes() -> bool:
    """True inside the scratch graph tf-keras builds to infer a layer's output signature
    (functional construction and cloning, before quantize_apply can link the input)."""
    return str(getattr(tf.compat.v1.get_default_graph(), "name", "")).endswith("_scratch_graph")


def custom_objects() -> Dict[str, object]:
    """What deserializing a QAT model with RNNPool needs (besides tfmot's own scope)."""
    return {"RNNPool": RNNPool, "RNNPoolQuantizeConfig": RNNPoolQuantizeConfig,
            "RNNPoolWeightQuantizer": RNNPoolWeightQuantizer,
            "rnnpool_tflm>RNNPool": RNNPool, "rnnpool_tflm>RNNPoolQuantizeConfig": RNNPoolQuantizeConfig,
            "rnnpool_tflm>RNNPoolWeightQuantizer": RNNPoolWeightQuantizer}


def quantize_scope():
    return _tfmot_keras.quantize_scope(custom_objects())


# -- what tfmot can quantize ---------------------------------------------------------------

_REGISTRY = _registry8.Default8BitQuantizeRegistry()
_SUPPORTED_ACTIVATIONS = (_qaa.QuantizeAwareActivation._PRE_QUANT_ACTIVATIONS
                          | _qaa.QuantizeAwareActivation._POST_QUANT_ACTIVATIONS
                          | _qaa.QuantizeAwareActivation._NO_QUANTIZE_ACTIVATIONS)


def _why_unquantizable(layer) -> Optional[str]:
    """None when tfmot's default 8-bit scheme (plus RNNPool's config) handles `layer`."""
    if isinstance(layer, (RNNPool, keras.layers.InputLayer, keras.layers.BatchNormalization)):
        return None  # BatchNormalization: folded into a preceding convolution (tfmot checks the pattern)
    if isinstance(layer, _annotate_mod.QuantizeAnnotate):
        return None if layer.quantize_config is not None else _why_unquantizable(layer.layer)
    if isinstance(layer, keras.Model):
        return "a model nested inside the model (tfmot quantizes flat models only)"
    if isinstance(layer, keras.layers.Lambda) or type(layer).__name__ == "TFOpLambda":
        return "a Lambda/TensorFlow-op layer (tfmot cannot see what it computes)"
    if not _REGISTRY.supports(layer):
        return f"{type(layer).__name__} is not in tfmot's default 8-bit registry"
    activation = getattr(layer, "activation", None)
    if activation is not None:
        name = getattr(activation, "__name__", type(activation).__name__)
        if name not in _SUPPORTED_ACTIVATIONS:
            return f"its activation {name!r} cannot be quantized (use a separate ReLU/ReLU6 layer)"
    return None


def check_quantizable(model, layers=None) -> None:
    """Raises RNNPoolError naming every layer of `layers` (default: all of `model`) tfmot cannot quantize."""
    problems = [f"{layer.name!r} ({why})" for layer in (model.layers if layers is None else layers)
                if (why := _why_unquantizable(layer))]
    if problems:
        raise RNNPoolError("cannot quantize layer" + ("s " if len(problems) > 1 else " ") + "; ".join(problems)
                           + "; give it a tfmot QuantizeConfig via quantize_annotate_layer or leave it "
                           "out of partial quantization")


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise RNNPoolError(f"expected a Keras model, got {type(model).__name__}")
    if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise RNNPoolError("only Sequential and functional Keras models can be quantized "
                           "(a subclassed model has no layer graph)")
    if not model.built:
        raise RNNPoolError("the model is not built; call it on an input or give it an Input first")


# -- the scheme: tfmot's default 8-bit with one fix ------------------------------------------

class _WeightsThenReLUQuantize(_transforms.Transform):
    """Conv2D/DepthwiseConv2D/Dense -> ReLU(/ReLU6): no fake-quant between them (the
    converter fuses the ReLU), but the weights stay quantized. tfmot's LayerReLUQuantize
    gives the parent NoOpQuantizeConfig, which also leaves its weights float during
    training although the converter quantizes them: training would not see the int8 model."""

    def pattern(self):
        return _transforms.LayerPattern("ReLU", inputs=[_transforms.LayerPattern(
            "Conv2D|DepthwiseConv2D|Dense", config={"activation": "linear"})])

    def replacement(self, match_layer):
        parent = match_layer.input_layers[0]
        if not _t8._has_custom_quantize_config(parent):
            parent.layer["config"]["activation"] = _qutils.serialize_activation(
                _qaa.NoOpActivation(), use_legacy_format=True)
        return match_layer

    def custom_objects(self):
        return {"NoOpActivation": _qaa.NoOpActivation}


class _WeightsThenReLUActivationQuantize(_WeightsThenReLUQuantize):
    def pattern(self):
        return _transforms.LayerPattern("Activation", config={"activation": "relu"}, inputs=[
            _transforms.LayerPattern("Conv2D|DepthwiseConv2D|Dense", config={"activation": "linear"})])


class _AddReLUQuantize(_t8.LayerReLUQuantize):
    """tfmot's rule, kept for Add -> ReLU (no weights there)."""

    def pattern(self):
        return _transforms.LayerPattern("ReLU", inputs=[_transforms.LayerPattern("Add")])


class _AddReLUActivationQuantize(_t8.LayerReluActivationQuantize):
    def pattern(self):
        return _transforms.LayerPattern("Activation", config={"activation": "relu"},
                                        inputs=[_transforms.LayerPattern("Add")])


class _LayoutTransform(_layout8.Default8BitQuantizeLayoutTransform):
    def apply(self, model, layer_quantize_map):
        t = _t8
        transforms = [
            t.InputLayerQuantize(), t.SeparableConv1DQuantize(), t.SeparableConvQuantize(),
            t.Conv2DReshapeBatchNormReLUQuantize(), t.Conv2DReshapeBatchNormActivationQuantize(),
            t.Conv2DBatchNormReLUQuantize(), t.Conv2DBatchNormActivationQuantize(),
            t.Conv2DReshapeBatchNormQuantize(), t.Conv2DBatchNormQuantize(),
            t.ConcatTransform6Inputs(), t.ConcatTransform5Inputs(), t.ConcatTransform4Inputs(),
            t.ConcatTransform3Inputs(), t.ConcatTransform(),
            t.DenseBatchNormQuantize(), t.DenseBatchNormReLUQuantize(), t.DenseBatchNormActivationQuantize(),
            _WeightsThenReLUQuantize(), _WeightsThenReLUActivationQuantize(),
            _AddReLUQuantize(), _AddReLUActivationQuantize(),
        ]
        return _model_transformer.ModelTransformer(
            model, transforms, set(layer_quantize_map.keys()), layer_quantize_map).transform()


class QuantizeScheme(_scheme8.Default8BitQuantizeScheme):
    """tfmot's Default8BitQuantizeScheme, except that a Conv2D/DepthwiseConv2D/Dense
    followed by a ReLU keeps its weight quantizer (see _WeightsThenReLUQuantize)."""

    def get_layout_transformer(self):
        return _LayoutTransform()


# -- annotate / apply ------------------------------------------------------------------------

def quantize_annotate_layer(layer, quantize_config=None):
    """tfmot's quantize_annotate_layer; an RNNPool gets RNNPoolQuantizeConfig by default."""
    if quantize_config is None and isinstance(layer, RNNPool):
        quantize_config = RNNPoolQuantizeConfig()
    return _tfmot_keras.quantize_annotate_layer(layer, quantize_config)


def quantize_annotate_model(model):
    """Annotates every layer for quantization (RNNPool with its own config).

    Raises RNNPoolError naming the layers tfmot cannot quantize."""
    _check_model(model)
    check_quantizable(model)

    def annotate(layer):
        if isinstance(layer, _annotate_mod.QuantizeAnnotate):
            if layer.quantize_config is None and isinstance(layer.layer, RNNPool):
                return quantize_annotate_layer(layer.layer)
            return layer
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        return quantize_annotate_layer(layer)

    with quantize_scope():
        return keras.models.clone_model(model, input_tensors=None, clone_function=annotate)


def quantize_apply(annotated_model):
    """tfmot's quantize_apply plus the RNNPool input links. Annotated RNNPool layers
    without a config get RNNPoolQuantizeConfig; unquantizable annotated layers raise
    RNNPoolError naming them."""
    _check_model(annotated_model)
    annotated = [layer for layer in annotated_model.layers if isinstance(layer, _annotate_mod.QuantizeAnnotate)]
    if not annotated:
        raise RNNPoolError("no layer is annotated for quantization (use quantize_annotate_model or "
                           "quantize_annotate_layer)")
    check_quantizable(annotated_model, annotated)
    for layer in annotated:
        if isinstance(layer.layer, RNNPool) and layer.quantize_config is None:
            layer.quantize_config = RNNPoolQuantizeConfig()
    with quantize_scope():
        try:
            qat_model = _tfmot_keras.quantize_apply(annotated_model, QuantizeScheme())
        except RuntimeError as exc:  # tfmot: "Layer NAME:<class ...> is not supported. ..."
            match = re.match(r"Layer (.+?):(<class '[^']*'>)? is not supported", str(exc))
            if not match:
                raise
            raise RNNPoolError(f"cannot quantize layer {match.group(1)!r}: tfmot's default 8-bit scheme does "
                               "not support it here (a BatchNormalization must directly follow a "
                               "Conv2D/DepthwiseConv2D to be folded)") from None
    link_input_quantizers(qat_model)
    return qat_model


def quantize_model(model):
    """A QAT copy of `model` (functional or Sequential): every layer quantized."""
    return quantize_apply(quantize_annotate_model(model))


# -- linking each RNNPool to the quantizer of its input -----------------------------------------

def rnnpool_wrappers(model) -> List:
    """The QuantizeWrapper layers that wrap an RNNPool, in layer order."""
    return [layer for layer in model.layers
            if isinstance(layer, _qwrapper.QuantizeWrapper) and isinstance(layer.layer, RNNPool)]


def _quantizer_fields(quantizer, vars_: dict, source: str) -> InputGrid:
    if getattr(quantizer, "per_axis", False):
        raise RNNPoolError(f"the input of an RNNPool is quantized per channel by {source!r}; it must be per tensor")
    num_bits = int(getattr(quantizer, "num_bits", 8))
    if num_bits != 8:
        raise RNNPoolError(f"the input of an RNNPool is quantized to {num_bits} bits by {source!r}; "
                           "the int8 op needs 8")
    return InputGrid(vars_["min_var"], vars_["max_var"], num_bits, bool(getattr(quantizer, "narrow_range", False)),
                     source)


def _single_inbound(layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        raise RNNPoolError(f"layer {layer.name!r} is called {len(nodes)} times; shared layers are not supported "
                           "on the path into an RNNPool")
    inbound = tf.nest.flatten(nodes[0].inbound_layers)
    if len(inbound) != 1:
        raise RNNPoolError(f"layer {layer.name!r} has {len(inbound)} inputs; expected one")
    return inbound[0]


def find_input_quantizer(model, rnnpool_wrapper) -> InputGrid:
    """The fake-quant that puts the RNNPool's input on its grid: the nearest
    producer's output/activation quantizer, looking through value-preserving layers."""
    name = rnnpool_wrapper.layer.name
    layer = _single_inbound(rnnpool_wrapper)
    for _ in range(len(model.layers) + 1):
        if isinstance(layer, _qlayer.QuantizeLayer):
            if layer.quantizer is None:
                break
            return _quantizer_fields(layer.quantizer, layer.quantizer_vars, layer.name)
        inner = layer.layer if isinstance(layer, _qwrapper.QuantizeWrapper) else layer
        if isinstance(layer, _qwrapper.QuantizeWrapper):
            if layer._output_quantizers:
                return _quantizer_fields(layer._output_quantizers[0], layer._output_quantizer_vars, layer.name)
            posts = [a for a in layer._quantize_activations if a._should_post_quantize()]
            if posts:
                return _quantizer_fields(posts[-1].quantizer, posts[-1]._post_activation_vars, layer.name)
        if isinstance(inner, VALUE_PRESERVING):
            layer = _single_inbound(layer)
            continue
        break
    raise RNNPoolError(f"the input of RNNPool layer {name!r} is not quantized (its producer {layer.name!r} has "
                       "no fake-quant); quantize the layer that feeds it too")


def link_input_quantizers(model):
    """Points every RNNPool of a QAT model at its input's quantizer; returns the model."""
    for wrapper in rnnpool_wrappers(model):
        if not isinstance(wrapper.quantize_config, RNNPoolQuantizeConfig):
            raise RNNPoolError(f"RNNPool layer {wrapper.layer.name!r} is quantized with "
                               f"{type(wrapper.quantize_config).__name__}; it needs RNNPoolQuantizeConfig")
        wrapper.quantize_config.input_grid = find_input_quantizer(model, wrapper)
    return model


# -- starting QAT from calibrated ranges -------------------------------------------------------------

def _range_variables(model) -> List[tf.Variable]:
    """The min/max variables of every activation quantizer (not the weights')."""
    found = []
    for layer in model.layers:
        if isinstance(layer, _qlayer.QuantizeLayer) and layer.quantizer is not None:
            found += list(layer.quantizer_vars.values())
        if isinstance(layer, _qwrapper.QuantizeWrapper):
            if layer._output_quantizers:
                found += list(layer._output_quantizer_vars.values())
            for act in layer._quantize_activations:
                for attr in ("_pre_activation_vars", "_post_activation_vars"):
                    found += list(getattr(act, attr, {}).values())
    return found


@contextlib.contextmanager
def _moving_average_decay(decay: float):
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops
    original = quant_ops.MovingAvgQuantize

    def with_decay(*args, **kwargs):
        kwargs["ema_decay"] = decay
        return original(*args, **kwargs)

    quant_ops.MovingAvgQuantize = with_decay
    try:
        yield
    finally:
        quant_ops.MovingAvgQuantize = original


def calibrate_ranges(qat_model, data, batch_size: int = 256, batches: int = 1):
    """Sets every activation range of a QAT model to the min/max its tensor takes on `data`
    (the first `batches` batches), before fine-tuning.

    tfmot's moving-average ranges start at [-6, 6] and move by 0.1 % per training
    step, so a short QAT run keeps them far too wide (a ReLU6 output then uses half
    of the int8 codes). Only the range variables change: weights and BatchNormalization
    statistics are restored after the calibration passes."""
    variables = qat_model.variables
    saved = [v.numpy() for v in variables]
    ranges = {id(v) for v in _range_variables(qat_model)}
    data = data if isinstance(data, (list, tuple)) else [data]
    with _moving_average_decay(0.0):
        for start in range(0, min(int(data[0].shape[0]), batch_size * batches), batch_size):
            batch = [np.asarray(d[start:start + batch_size], np.float32) for d in data]
            qat_model(batch if len(batch) > 1 else batch[0], training=True)
    for v, value in zip(variables, saved):
        if id(v) not in ranges:
            v.assign(value)
    return qat_model


def is_quantized_model(model) -> bool:
    return any(isinstance(layer, (_qwrapper.QuantizeWrapper, _qlayer.QuantizeLayer)) for layer in model.layers)


@contextlib.contextmanager
def _loading_fixes():
    """Makes tfmot models load from .keras and .h5 files as they were saved.

    - QuantizeWrapperV2.build adopts the inner layer's weights as its own in the
      order they exist *at that moment*. quantize_apply wraps built layers, so a saved
      model lists e.g. w1, u1, bias_gate1, ...; a loader wraps unbuilt ones and would
      list the quantized weights first, and the weights would land in the wrong
      variables (.h5) or be rejected (.keras). Build the inner layer first.
    - QuantizeLayer.build never marks the layer built, so the .keras loader
      (build_from_config, then the functional call) created its ranges twice.
    """
    wrapper_build = _qwrapper.QuantizeWrapperV2.build
    layer_from_config = _qlayer.QuantizeLayer.build_from_config

    def build_inner_first(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        wrapper_build(self, input_shape)

    def build_once(self, config):
        layer_from_config(self, config)
        self.built = True

    _qwrapper.QuantizeWrapperV2.build = build_inner_first
    _qlayer.QuantizeLayer.build_from_config = build_once
    try:
        yield
    finally:
        _qwrapper.QuantizeWrapperV2.build = wrapper_build
        _qlayer.QuantizeLayer.build_from_config = layer_from_config


def load_model(path, compile: bool = False):
    """Loads a float or QAT Keras model (.keras / .h5 / SavedModel dir) with RNNPool, linked."""
    with quantize_scope(), _loading_fixes():
        model = keras.models.load_model(path, compile=compile)
    if is_quantized_model(model):
        link_input_quantizers(model)
    return model


__all__ = ["RNNPoolQuantizeConfig", "RNNPoolWeightQuantizer", "InputGrid", "quantize_model",
           "quantize_annotate_model", "quantize_annotate_layer", "quantize_apply", "link_input_quantizers",
           "find_input_quantizer", "check_quantizable", "load_model", "quantize_scope", "is_quantized_model",
           "rnnpool_wrappers", "custom_objects", "calibrate_ranges", "QuantizeScheme", "tflite_grid"]
