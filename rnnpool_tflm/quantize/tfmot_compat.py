"""Everything rnnpool-tflm uses from tfmot (tensorflow-model-optimization) beyond its
public API, in one place, checked against the version it was written for.

tfmot's public API covers QuantizeConfig, the quantizers, QuantizeWrapper, the default
8-bit scheme and its transforms. QAT with an RNNPool also needs to find the fake-quant
ranges inside wrapped layers, recognise annotated and input-quantizing layers, patch two
loading bugs and the moving-average decay, read one error message and mirror one list
of transforms. Those are private and may change in any tfmot release, so they live only
here; tests/test_tfmot_compat.py has one test per access or patch that fails when tfmot
behaves differently.

Upgrading tfmot: importing this module raises TfmotVersionError for any version but
TESTED_VERSION. Set RNNPOOL_TFMOT_UNTESTED=1 to import it anyway, run
tests/test_tfmot_compat.py, fix what fails here, then update TESTED_VERSION.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import os
import re
import warnings
from typing import List, Mapping, Optional, Sequence

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from ..core.errors import RNNPoolError

TESTED_VERSION = "0.8.1"
UNTESTED_ENV = "RNNPOOL_TFMOT_UNTESTED"
_PACKAGE = "tensorflow_model_optimization.python.core.quantization.keras"

# Every private name used below, as "module:attribute" under tfmot's Keras quantization package.
PRIVATE_NAMES = (
    "quantize_annotate:QuantizeAnnotate",
    "quantize_layer:QuantizeLayer",
    "quantize_layer:QuantizeLayer.build_from_config",
    "quantize_wrapper:QuantizeWrapperV2.build",
    "quantize_aware_activation:QuantizeAwareActivation._PRE_QUANT_ACTIVATIONS",
    "quantize_aware_activation:QuantizeAwareActivation._POST_QUANT_ACTIVATIONS",
    "quantize_aware_activation:QuantizeAwareActivation._NO_QUANTIZE_ACTIVATIONS",
    "quantize_aware_activation:QuantizeAwareActivation._should_post_quantize",
    "quantize_aware_activation:NoOpActivation",
    "utils:serialize_activation",
    "default_8bit.default_8bit_transforms:_has_custom_quantize_config",
    "quant_ops:MovingAvgQuantize",
    "quant_ops:_FakeQuantWithMinMaxVars",
)


class TfmotVersionError(RNNPoolError):
    """The installed tfmot is not the one this module was written and tested against."""


def _resolve(name: str):
    module, _, attributes = name.partition(":")
    value = importlib.import_module(f"{_PACKAGE}.{module}")
    for attribute in attributes.split("."):
        value = getattr(value, attribute)
    return value


def differences() -> List[str]:
    """What the installed tfmot lacks of what this module uses (empty for 0.8.1)."""
    missing = []
    for name in PRIVATE_NAMES:
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            missing.append(f"{name} is gone")
    if "quant_ops:MovingAvgQuantize is gone" not in missing:
        if "ema_decay" not in inspect.signature(_resolve("quant_ops:MovingAvgQuantize")).parameters:
            missing.append("quant_ops.MovingAvgQuantize has no ema_decay argument")
    return missing


def check_version(version: str, allow_untested: bool = False) -> None:
    """Raises TfmotVersionError naming this module and what changed, unless `version` is the
    tested one (or `allow_untested` and every private name still exists: then a warning)."""
    missing = differences()
    if version == TESTED_VERSION and not missing:
        return
    what = f"tensorflow-model-optimization {version} is installed; {__name__} was written for {TESTED_VERSION}"
    if missing:
        raise TfmotVersionError(
            f"{what} and the private tfmot API it uses changed: {'; '.join(missing)}. "
            f"Install tensorflow-model-optimization=={TESTED_VERSION}, or port {__name__}"
        )
    if not allow_untested:
        raise TfmotVersionError(
            f"{what}. Install tensorflow-model-optimization=={TESTED_VERSION}, or set "
            f"{UNTESTED_ENV}=1 and run tests/test_tfmot_compat.py to port {__name__}"
        )
    warnings.warn(f"{what}; running untested ({UNTESTED_ENV} is set)", stacklevel=2)


check_version(tfmot.__version__, allow_untested=os.environ.get(UNTESTED_ENV) == "1")

from tensorflow_model_optimization.python.core.quantization.keras import quant_ops as _quant_ops  # noqa: E402
from tensorflow_model_optimization.python.core.quantization.keras import quantize_annotate as _annotate
from tensorflow_model_optimization.python.core.quantization.keras import quantize_aware_activation as _activation
from tensorflow_model_optimization.python.core.quantization.keras import quantize_layer as _layer
from tensorflow_model_optimization.python.core.quantization.keras import quantize_wrapper as _wrapper
from tensorflow_model_optimization.python.core.quantization.keras import utils as _utils
from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (  # noqa: E402
    default_8bit_transforms as _transforms8,
)

# -- layer classes the public API does not export -------------------------------------------

QuantizeAnnotate = _annotate.QuantizeAnnotate  # what quantize_annotate_layer returns (.layer, .quantize_config)
QuantizeLayer = _layer.QuantizeLayer  # the input fake-quant quantize_apply adds
NoOpActivation = _activation.NoOpActivation  # an activation the wrapper leaves unquantized


# -- fake-quant ranges inside a QAT model ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FakeQuant:
    """One fake-quant of a QAT model: its quantizer and range variables ('min_var', 'max_var')."""

    quantizer: object
    variables: Mapping[str, tf.Variable]
    owner: str  # the layer holding it
    stage: str  # "input", "output", "pre_activation" or "post_activation"


def input_fake_quant(layer) -> Optional[FakeQuant]:
    """The fake-quant of a QuantizeLayer (None when it has no quantizer)."""
    if layer.quantizer is None:
        return None
    return FakeQuant(layer.quantizer, layer.quantizer_vars, layer.name, "input")


def output_fake_quant(wrapper) -> Optional[FakeQuant]:
    """The fake-quant a QuantizeWrapper applies to the wrapped layer's output, if any."""
    if not wrapper._output_quantizers:
        return None
    return FakeQuant(wrapper._output_quantizers[0], wrapper._output_quantizer_vars, wrapper.name, "output")


def activation_fake_quants(wrapper) -> List[FakeQuant]:
    """The fake-quants around the wrapped layer's activation, in the order they apply."""
    found = []
    for activation in wrapper._quantize_activations:
        for stage in ("pre_activation", "post_activation"):
            variables = getattr(activation, f"_{stage}_vars", None)
            if variables is not None:
                found.append(FakeQuant(activation.quantizer, variables, wrapper.name, stage))
    return found


def weight_quantizers(wrapper) -> List[tuple]:
    """(float weight, quantizer, quantizer variables) per quantized weight of a QuantizeWrapper."""
    return list(wrapper._weight_vars)


# -- what the default 8-bit scheme can quantize ---------------------------------------------------

_QAA = _activation.QuantizeAwareActivation
QUANTIZABLE_ACTIVATIONS = frozenset(
    _QAA._PRE_QUANT_ACTIVATIONS | _QAA._POST_QUANT_ACTIVATIONS | _QAA._NO_QUANTIZE_ACTIVATIONS
)


def serialize_activation(activation) -> object:
    """An activation as tfmot's transforms write it into a layer config."""
    return _utils.serialize_activation(activation, use_legacy_format=True)


def has_custom_quantize_config(layer_node) -> bool:
    """Whether a transform's matched layer carries a user-given QuantizeConfig."""
    return _transforms8._has_custom_quantize_config(layer_node)


# tfmot's Default8BitQuantizeLayoutTransform.apply builds this list inside the method; a
# scheme that changes one transform has to restate it (tests compare it with tfmot's source).
DEFAULT_8BIT_LAYOUT_TRANSFORMS = (
    "InputLayerQuantize",
    "SeparableConv1DQuantize",
    "SeparableConvQuantize",
    "Conv2DReshapeBatchNormReLUQuantize",
    "Conv2DReshapeBatchNormActivationQuantize",
    "Conv2DBatchNormReLUQuantize",
    "Conv2DBatchNormActivationQuantize",
    "Conv2DReshapeBatchNormQuantize",
    "Conv2DBatchNormQuantize",
    "ConcatTransform6Inputs",
    "ConcatTransform5Inputs",
    "ConcatTransform4Inputs",
    "ConcatTransform3Inputs",
    "ConcatTransform",
    "DenseBatchNormQuantize",
    "DenseBatchNormReLUQuantize",
    "DenseBatchNormActivationQuantize",
    "LayerReLUQuantize",
    "LayerReluActivationQuantize",
)


def default_8bit_layout_transforms(replace: Mapping[str, Sequence[object]]) -> List[object]:
    """tfmot's default 8-bit layout transforms in its order, each named in `replace`
    exchanged for the given transform instances."""
    unknown = set(replace) - set(DEFAULT_8BIT_LAYOUT_TRANSFORMS)
    if unknown:
        raise ValueError(f"not default 8-bit transforms: {sorted(unknown)}")
    transforms = []
    for name in DEFAULT_8BIT_LAYOUT_TRANSFORMS:
        transforms.extend(replace[name] if name in replace else [getattr(_transforms8, name)()])
    return transforms


# -- quantize_apply's error for a layer it cannot quantize ----------------------------------------

_UNSUPPORTED = re.compile(r"Layer (.+?):(<class '[^']*'>)? is not supported")


def unsupported_layer(exc: BaseException) -> Optional[str]:
    """The layer name in quantize_apply's "Layer NAME:<class ...> is not supported" RuntimeError."""
    match = _UNSUPPORTED.match(str(exc)) if isinstance(exc, RuntimeError) else None
    return match.group(1) if match else None


# -- patches ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def moving_average_decay(decay: float):
    """MovingAverageQuantizer ranges move with `decay` instead of tfmot's fixed 0.999 (the
    quantizer passes ema_decay=0.999 to quant_ops.MovingAvgQuantize; no argument changes it)."""
    original = _quant_ops.MovingAvgQuantize

    def with_decay(*args, **kwargs):
        kwargs["ema_decay"] = decay
        return original(*args, **kwargs)

    _quant_ops.MovingAvgQuantize = with_decay
    try:
        yield
    finally:
        _quant_ops.MovingAvgQuantize = original


def _across_replicas(replica, value, reduce):
    """`reduce` (tf.reduce_min / tf.reduce_max) of `value` over this machine's replicas, the same
    tensor on every replica. A merge_call reads the replicas' values directly: collective ops
    (all_gather) could be launched in another order on each replica than BatchNormalization's
    all-reduces, and collectives must match. Across machines (MultiWorkerMirroredStrategy) each
    machine keeps its own extreme, and the EMA averages them, as tfmot does per replica."""

    def merge(strategy, per_replica):
        return reduce(tf.stack(strategy.experimental_local_results(per_replica)), axis=0)

    return replica.merge_call(merge, args=(value,))


@contextlib.contextmanager
def global_batch_ranges():
    """Under tf.distribute with several replicas, MovingAverageQuantizer's training ranges come from
    the global batch's min/max, as on one device. tfmot takes each replica's own min/max and averages
    them into the EMA (assign_moving_average's cross-replica mean), so its grids depend on how the
    batch was split. Symmetric ranges (unused by the default 8-bit scheme) are left to tfmot."""
    original = _quant_ops.MovingAvgQuantize

    def global_ranges(
        inputs,
        min_var,
        max_var,
        per_channel=False,
        ema_decay=0.999,
        name_prefix="MovingAvgQuantize",
        is_training=True,
        num_bits=8,
        narrow_range=False,
        symmetric=False,
    ):
        replica = tf.distribute.get_replica_context()
        rank = inputs.shape.rank
        if (
            not is_training
            or symmetric
            or replica is None
            or replica.num_replicas_in_sync == 1
            or (per_channel and (rank is None or rank < 2))
        ):
            return original(
                inputs,
                min_var,
                max_var,
                per_channel=per_channel,
                ema_decay=ema_decay,
                name_prefix=name_prefix,
                is_training=is_training,
                num_bits=num_bits,
                narrow_range=narrow_range,
                symmetric=symmetric,
            )
        with tf.name_scope(name_prefix):
            axes = list(range(rank - 1)) if per_channel else None  # per channel: all but the last axis
            low = _across_replicas(replica, tf.reduce_min(inputs, axis=axes), tf.reduce_min)
            high = _across_replicas(replica, tf.reduce_max(inputs, axis=axes), tf.reduce_max)
            # The same value on every replica, so the EMA's cross-replica mean leaves it as it is;
            # the range always holds 0 (TFLite's rule, as tfmot applies it).
            new_min = tf.__internal__.train.assign_moving_average(
                min_var, tf.minimum(low, 0.0), ema_decay, zero_debias=False
            )
            new_max = tf.__internal__.train.assign_moving_average(
                max_var, tf.maximum(high, 0.0), ema_decay, zero_debias=False
            )
            return _quant_ops._FakeQuantWithMinMaxVars(
                inputs, new_min, new_max, per_channel=per_channel, num_bits=num_bits, narrow_range=narrow_range
            )

    _quant_ops.MovingAvgQuantize = global_ranges
    try:
        yield
    finally:
        _quant_ops.MovingAvgQuantize = original


@contextlib.contextmanager
def wrapper_builds_inner_layer_first():
    """QuantizeWrapperV2.build adopts the inner layer's weights as its own in the order
    they exist *at that moment*. quantize_apply wraps built layers, so a saved model lists
    e.g. w1, u1, bias_gate1, ...; a loader wraps unbuilt ones and would list the quantized
    weights first, and the weights land in the wrong variables (.h5). Build the inner layer first."""
    original = _wrapper.QuantizeWrapperV2.build

    def build_inner_first(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        original(self, input_shape)

    _wrapper.QuantizeWrapperV2.build = build_inner_first
    try:
        yield
    finally:
        _wrapper.QuantizeWrapperV2.build = original


@contextlib.contextmanager
def quantize_layer_built_once():
    """QuantizeLayer.build never marks the layer built, so the .keras loader (build_from_config,
    then the functional call) creates its range variables twice and rejects the file."""
    original = _layer.QuantizeLayer.build_from_config

    def build_once(self, config):
        original(self, config)
        self.built = True

    _layer.QuantizeLayer.build_from_config = build_once
    try:
        yield
    finally:
        _layer.QuantizeLayer.build_from_config = original


@contextlib.contextmanager
def loading_fixes():
    """Makes tfmot models load from .keras and .h5 files as they were saved (both fixes above)."""
    with wrapper_builds_inner_layer_first(), quantize_layer_built_once():
        yield


# -- tf-keras internals of the same path --------------------------------------------------------


def inferring_output_signature() -> bool:
    """True inside the scratch graph tf-keras builds to infer a layer's output signature
    (functional construction and cloning, where quantize_apply calls a wrapper before it
    can link an RNNPool to its input's range)."""
    return str(getattr(tf.compat.v1.get_default_graph(), "name", "")).endswith("_scratch_graph")


__all__ = [
    "TESTED_VERSION",
    "UNTESTED_ENV",
    "PRIVATE_NAMES",
    "TfmotVersionError",
    "differences",
    "check_version",
    "QuantizeAnnotate",
    "QuantizeLayer",
    "NoOpActivation",
    "FakeQuant",
    "input_fake_quant",
    "output_fake_quant",
    "activation_fake_quants",
    "weight_quantizers",
    "QUANTIZABLE_ACTIVATIONS",
    "serialize_activation",
    "has_custom_quantize_config",
    "DEFAULT_8BIT_LAYOUT_TRANSFORMS",
    "default_8bit_layout_transforms",
    "unsupported_layer",
    "moving_average_decay",
    "wrapper_builds_inner_layer_first",
    "quantize_layer_built_once",
    "loading_fixes",
    "inferring_output_signature",
]
