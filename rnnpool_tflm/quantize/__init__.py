"""Quantization-aware training with tfmot: RNNPool's QuantizeConfig, the integer-exact
simulation of the int8 kernel, the quantization scheme, range calibration, loading of
QAT models, and (tfmot_compat) every tfmot internal these rely on."""

from .model import (
    InputGrid,
    RNNPoolQuantizeConfig,
    RNNPoolWeightQuantizer,
    calibrate_ranges,
    custom_objects,
    find_input_quantizer,
    is_quantized_model,
    link_input_quantizers,
    load_model,
    output_range,
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
    quantize_model,
    quantize_scope,
    rnnpool_wrappers,
    tflite_grid,
)
from .scheme import QuantizeScheme, check_quantizable

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
