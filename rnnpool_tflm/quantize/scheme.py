"""The quantization scheme for QAT: tfmot's default 8-bit scheme with one fix, and which
layers it can quantize (checked before tfmot runs, so the error names every such layer)."""

from __future__ import annotations

from typing import Optional

import tensorflow_model_optimization as tfmot

from ..core.errors import RNNPoolError
from ..core.keras import keras
from ..layer.rnnpool import RNNPool
from . import tfmot_compat

_default8 = tfmot.quantization.keras.default_8bit
_graph = tfmot.quantization.keras.graph_transformations
Transform, LayerPattern = _graph.transforms.Transform, _graph.transforms.LayerPattern

_REGISTRY = _default8.Default8BitQuantizeRegistry()


# -- what tfmot can quantize ---------------------------------------------------------------


def why_unquantizable(layer) -> Optional[str]:
    """None when tfmot's default 8-bit scheme (plus RNNPool's config) handles `layer`, else why not."""
    if isinstance(layer, (RNNPool, keras.layers.InputLayer, keras.layers.BatchNormalization)):
        return None  # BatchNormalization: folded into a preceding convolution (tfmot checks the pattern)
    if isinstance(layer, tfmot_compat.QuantizeAnnotate):
        return None if layer.quantize_config is not None else why_unquantizable(layer.layer)
    if isinstance(layer, keras.Model):
        return "a model nested inside the model (tfmot quantizes flat models only)"
    if isinstance(layer, keras.layers.Lambda) or type(layer).__name__ == "TFOpLambda":
        return "a Lambda/TensorFlow-op layer (tfmot cannot see what it computes)"
    if not _REGISTRY.supports(layer):
        return f"{type(layer).__name__} is not in tfmot's default 8-bit registry"
    activation = getattr(layer, "activation", None)
    if activation is not None:
        name = getattr(activation, "__name__", type(activation).__name__)
        if name not in tfmot_compat.QUANTIZABLE_ACTIVATIONS:
            return f"its activation {name!r} cannot be quantized (use a separate ReLU/ReLU6 layer)"
    return None


def check_quantizable(model, layers=None) -> None:
    """Raises RNNPoolError naming every layer of `layers` (default: all of `model`) tfmot cannot quantize."""
    problems = [
        f"{layer.name!r} ({why})"
        for layer in (model.layers if layers is None else layers)
        if (why := why_unquantizable(layer))
    ]
    if problems:
        raise RNNPoolError(
            "cannot quantize layer"
            + ("s " if len(problems) > 1 else " ")
            + "; ".join(problems)
            + "; give it a tfmot QuantizeConfig via quantize_annotate_layer or leave it "
            "out of partial quantization"
        )


# -- the scheme: tfmot's default 8-bit with one fix ------------------------------------------


class _WeightsThenReLUQuantize(Transform):
    """Conv2D/DepthwiseConv2D/Dense -> ReLU(/ReLU6): no fake-quant between them (the
    converter fuses the ReLU), but the weights stay quantized. tfmot's LayerReLUQuantize
    gives the parent NoOpQuantizeConfig, which also leaves its weights float during
    training although the converter quantizes them: training would not see the int8 model."""

    def pattern(self):
        return LayerPattern(
            "ReLU", inputs=[LayerPattern("Conv2D|DepthwiseConv2D|Dense", config={"activation": "linear"})]
        )

    def replacement(self, match_layer):
        parent = match_layer.input_layers[0]
        if not tfmot_compat.has_custom_quantize_config(parent):
            parent.layer["config"]["activation"] = tfmot_compat.serialize_activation(tfmot_compat.NoOpActivation())
        return match_layer

    def custom_objects(self):
        return {"NoOpActivation": tfmot_compat.NoOpActivation}


class _WeightsThenReLUActivationQuantize(_WeightsThenReLUQuantize):
    def pattern(self):
        return LayerPattern(
            "Activation",
            config={"activation": "relu"},
            inputs=[LayerPattern("Conv2D|DepthwiseConv2D|Dense", config={"activation": "linear"})],
        )


class _AddReLUQuantize(_default8.default_8bit_transforms.LayerReLUQuantize):
    """tfmot's rule, kept for Add -> ReLU (no weights there)."""

    def pattern(self):
        return LayerPattern("ReLU", inputs=[LayerPattern("Add")])


class _AddReLUActivationQuantize(_default8.default_8bit_transforms.LayerReluActivationQuantize):
    def pattern(self):
        return LayerPattern("Activation", config={"activation": "relu"}, inputs=[LayerPattern("Add")])


class _LayoutTransform(_default8.Default8BitQuantizeLayoutTransform):
    def apply(self, model, layer_quantize_map):
        transforms = tfmot_compat.default_8bit_layout_transforms(
            {
                "LayerReLUQuantize": [
                    _WeightsThenReLUQuantize(),
                    _WeightsThenReLUActivationQuantize(),
                    _AddReLUQuantize(),
                ],
                "LayerReluActivationQuantize": [_AddReLUActivationQuantize()],
            }
        )
        return _graph.model_transformer.ModelTransformer(
            model, transforms, set(layer_quantize_map.keys()), layer_quantize_map
        ).transform()


class QuantizeScheme(_default8.Default8BitQuantizeScheme):
    """tfmot's Default8BitQuantizeScheme, except that a Conv2D/DepthwiseConv2D/Dense
    followed by a ReLU keeps its weight quantizer (see _WeightsThenReLUQuantize)."""

    def get_layout_transformer(self):
        return _LayoutTransform()


__all__ = ["QuantizeScheme", "check_quantizable", "why_unquantizable"]
