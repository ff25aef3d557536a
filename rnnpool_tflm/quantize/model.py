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
asymmetric moving-average output quantizer, and, as tfmot's own configs swap a
Dense layer's kernel for its quantized value, the layer's float cells swapped for
the int8 kernel's simulation (quantize.simulation.QuantizedCells), so training
sees exactly the int8 kernel's numbers.

The tfmot internals this needs are in quantize.tfmot_compat, the scheme (tfmot's
default 8-bit with one fix) in quantize.scheme.

The simulation needs the grid its input lies on, which is set by the fake-quant
of the producing layer; `quantize_apply` links every RNNPool to it
(`link_input_quantizers`). A QAT model loaded from a file is linked by
`load_model`.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from ..core.errors import RNNPoolError
from ..core.keras import keras
from ..layer.rnnpool import CELL_WEIGHTS, RNNPool
from . import simulation as rnnpool_qat
from . import tfmot_compat
from .scheme import QuantizeScheme, check_quantizable

_tfmot_keras = tfmot.quantization.keras
QuantizeConfig = _tfmot_keras.QuantizeConfig
Quantizer = _tfmot_keras.quantizers.Quantizer
MovingAverageQuantizer = _tfmot_keras.quantizers.MovingAverageQuantizer
QuantizeWrapper = _tfmot_keras.QuantizeWrapper

QUANTIZED_WEIGHTS = ("w1", "u1", "w2", "u2")

# Layers whose output values are a subset of their input values (zero included), so
# their output lies on their input's quantization grid; tfmot gives them no quantizer.
VALUE_PRESERVING = (
    keras.layers.MaxPooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
    keras.layers.Permute,
    keras.layers.ActivityRegularization,
)


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

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, name), RNNPoolWeightQuantizer()) for name in QUANTIZED_WEIGHTS]

    def set_quantize_weights(self, layer, quantize_weights):
        """Swaps the layer's cells for the int8 kernel's simulation (tfmot's pattern: a Dense
        config swaps in the quantized kernel). The float variables stay on the layer (the
        simulation derives the exact scales from them); the quantizer outputs carry the
        weights' gradient path."""
        if len(quantize_weights) != len(QUANTIZED_WEIGHTS):
            raise ValueError(f"RNNPool expects {len(QUANTIZED_WEIGHTS)} quantized weights, got {len(quantize_weights)}")
        weights = {f"{name}{i}": getattr(layer, f"{name}{i}") for name in CELL_WEIGHTS for i in (1, 2)}
        rnn1, rnn2 = rnnpool_qat.layer_cells(weights, dict(zip(QUANTIZED_WEIGHTS, quantize_weights, strict=True)))
        layer.cells = rnnpool_qat.QuantizedCells(rnn1, rnn2, self._input_scale(layer), layer.rnnpool_config)

    def _input_scale(self, layer) -> tf.Tensor:
        if self.input_grid is not None:
            return self.input_grid.scale()
        if tfmot_compat.inferring_output_signature():
            return tf.constant(1.0)  # Keras only traces for the output signature; nothing runs
        raise RNNPoolError(
            f"RNNPool layer {layer.name!r}: its input quantizer is not linked; build QAT models with "
            "rnnpool_tflm.quantize.quantize_model/quantize_apply, and load saved ones with "
            "rnnpool_tflm.quantize.load_model (or call link_input_quantizers(model))"
        )

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}


def custom_objects() -> Dict[str, object]:
    """What deserializing a QAT model with RNNPool needs (besides tfmot's own scope)."""
    return {
        "RNNPool": RNNPool,
        "RNNPoolQuantizeConfig": RNNPoolQuantizeConfig,
        "RNNPoolWeightQuantizer": RNNPoolWeightQuantizer,
        "rnnpool_tflm>RNNPool": RNNPool,
        "rnnpool_tflm>RNNPoolQuantizeConfig": RNNPoolQuantizeConfig,
        "rnnpool_tflm>RNNPoolWeightQuantizer": RNNPoolWeightQuantizer,
    }


def quantize_scope():
    return _tfmot_keras.quantize_scope(custom_objects())


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise RNNPoolError(f"expected a Keras model, got {type(model).__name__}")
    if not (isinstance(model, keras.Sequential) or getattr(model, "_is_graph_network", False)):
        raise RNNPoolError(
            "only Sequential and functional Keras models can be quantized (a subclassed model has no layer graph)"
        )
    if not model.built:
        raise RNNPoolError("the model is not built; call it on an input or give it an Input first")


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
        if isinstance(layer, tfmot_compat.QuantizeAnnotate):
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
    annotated = [layer for layer in annotated_model.layers if isinstance(layer, tfmot_compat.QuantizeAnnotate)]
    if not annotated:
        raise RNNPoolError(
            "no layer is annotated for quantization (use quantize_annotate_model or quantize_annotate_layer)"
        )
    check_quantizable(annotated_model, annotated)
    for layer in annotated:
        if isinstance(layer.layer, RNNPool) and layer.quantize_config is None:
            layer.quantize_config = RNNPoolQuantizeConfig()
    with quantize_scope():
        try:
            qat_model = _tfmot_keras.quantize_apply(annotated_model, QuantizeScheme())
        except RuntimeError as exc:
            name = tfmot_compat.unsupported_layer(exc)
            if name is None:
                raise
            raise RNNPoolError(
                f"cannot quantize layer {name!r}: tfmot's default 8-bit scheme does "
                "not support it here (a BatchNormalization must directly follow a "
                "Conv2D/DepthwiseConv2D to be folded)"
            ) from None
    link_input_quantizers(qat_model)
    return qat_model


def quantize_model(model):
    """A QAT copy of `model` (functional or Sequential): every layer quantized."""
    return quantize_apply(quantize_annotate_model(model))


# -- linking each RNNPool to the quantizer of its input -----------------------------------------


def rnnpool_wrappers(model) -> List:
    """The QuantizeWrapper layers that wrap an RNNPool, in layer order."""
    return [layer for layer in model.layers if isinstance(layer, QuantizeWrapper) and isinstance(layer.layer, RNNPool)]


def output_range(wrapper) -> Optional[tfmot_compat.FakeQuant]:
    """The fake-quant on a QuantizeWrapper's output (an RNNPool's: the op's output grid)."""
    return tfmot_compat.output_fake_quant(wrapper)


def _input_grid(fake_quant: tfmot_compat.FakeQuant) -> InputGrid:
    quantizer, source = fake_quant.quantizer, fake_quant.owner
    if getattr(quantizer, "per_axis", False):
        raise RNNPoolError(f"the input of an RNNPool is quantized per channel by {source!r}; it must be per tensor")
    num_bits = int(getattr(quantizer, "num_bits", 8))
    if num_bits != 8:
        raise RNNPoolError(
            f"the input of an RNNPool is quantized to {num_bits} bits by {source!r}; the int8 op needs 8"
        )
    return InputGrid(
        fake_quant.variables["min_var"],
        fake_quant.variables["max_var"],
        num_bits,
        bool(getattr(quantizer, "narrow_range", False)),
        source,
    )


def _single_inbound(layer):
    nodes = layer._inbound_nodes
    if len(nodes) != 1:
        raise RNNPoolError(
            f"layer {layer.name!r} is called {len(nodes)} times; shared layers are not supported "
            "on the path into an RNNPool"
        )
    inbound = tf.nest.flatten(nodes[0].inbound_layers)
    if len(inbound) != 1:
        raise RNNPoolError(f"layer {layer.name!r} has {len(inbound)} inputs; expected one")
    return inbound[0]


def _last_fake_quant(layer) -> Optional[tfmot_compat.FakeQuant]:
    """The fake-quant a quantized layer applies last to its output, if any."""
    if isinstance(layer, tfmot_compat.QuantizeLayer):
        return tfmot_compat.input_fake_quant(layer)
    if isinstance(layer, QuantizeWrapper):
        output = tfmot_compat.output_fake_quant(layer)
        if output is not None:
            return output
        posts = [f for f in tfmot_compat.activation_fake_quants(layer) if f.stage == "post_activation"]
        return posts[-1] if posts else None
    return None


def find_input_quantizer(model, rnnpool_wrapper) -> InputGrid:
    """The fake-quant that puts the RNNPool's input on its grid: the nearest
    producer's output/activation quantizer, looking through value-preserving layers."""
    name = rnnpool_wrapper.layer.name
    layer = _single_inbound(rnnpool_wrapper)
    for _ in range(len(model.layers) + 1):
        fake_quant = _last_fake_quant(layer)
        if fake_quant is not None:
            return _input_grid(fake_quant)
        inner = layer.layer if isinstance(layer, QuantizeWrapper) else layer
        if not isinstance(inner, VALUE_PRESERVING):
            break
        layer = _single_inbound(layer)
    raise RNNPoolError(
        f"the input of RNNPool layer {name!r} is not quantized (its producer {layer.name!r} has "
        "no fake-quant); quantize the layer that feeds it too"
    )


def link_input_quantizers(model):
    """Points every RNNPool of a QAT model at its input's quantizer; returns the model."""
    for wrapper in rnnpool_wrappers(model):
        if not isinstance(wrapper.quantize_config, RNNPoolQuantizeConfig):
            raise RNNPoolError(
                f"RNNPool layer {wrapper.layer.name!r} is quantized with "
                f"{type(wrapper.quantize_config).__name__}; it needs RNNPoolQuantizeConfig"
            )
        wrapper.quantize_config.input_grid = find_input_quantizer(model, wrapper)
    return model


# -- starting QAT from calibrated ranges -------------------------------------------------------------


def _range_variables(model) -> List[tf.Variable]:
    """The min/max variables of every activation quantizer (not the weights')."""
    found = []
    for layer in model.layers:
        fake_quants = []
        if isinstance(layer, tfmot_compat.QuantizeLayer):
            fake_quants = [tfmot_compat.input_fake_quant(layer)]
        elif isinstance(layer, QuantizeWrapper):
            fake_quants = [tfmot_compat.output_fake_quant(layer), *tfmot_compat.activation_fake_quants(layer)]
        found += [v for f in fake_quants if f is not None for v in f.variables.values()]
    return found


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
    with tfmot_compat.moving_average_decay(0.0):
        for start in range(0, min(int(data[0].shape[0]), batch_size * batches), batch_size):
            batch = [np.asarray(d[start : start + batch_size], np.float32) for d in data]
            qat_model(batch if len(batch) > 1 else batch[0], training=True)
    for v, value in zip(variables, saved, strict=True):
        if id(v) not in ranges:
            v.assign(value)
    return qat_model


def is_quantized_model(model) -> bool:
    return any(isinstance(layer, (QuantizeWrapper, tfmot_compat.QuantizeLayer)) for layer in model.layers)


def load_model(path, compile: bool = False):
    """Loads a float or QAT Keras model (.keras / .h5 / SavedModel dir) with RNNPool, linked."""
    with quantize_scope(), tfmot_compat.loading_fixes():
        model = keras.models.load_model(path, compile=compile)
    if is_quantized_model(model):
        link_input_quantizers(model)
    return model


__all__ = [
    "RNNPoolQuantizeConfig",
    "RNNPoolWeightQuantizer",
    "InputGrid",
    "quantize_model",
    "quantize_annotate_model",
    "quantize_annotate_layer",
    "quantize_apply",
    "link_input_quantizers",
    "find_input_quantizer",
    "check_quantizable",
    "load_model",
    "quantize_scope",
    "is_quantized_model",
    "rnnpool_wrappers",
    "output_range",
    "custom_objects",
    "calibrate_ranges",
    "QuantizeScheme",
    "tflite_grid",
]
