"""Quantization-aware training with tfmot: RNNPool's QuantizeConfig, the integer-exact
simulation of the int8 kernel, range calibration and loading of QAT models."""

from .model import (InputGrid, QuantizeScheme, RNNPoolQuantizeConfig, RNNPoolWeightQuantizer, calibrate_ranges,
                    check_quantizable, custom_objects, find_input_quantizer, is_quantized_model,
                    link_input_quantizers, load_model, quantize_annotate_layer, quantize_annotate_model,
                    quantize_apply, quantize_model, quantize_scope, rnnpool_wrappers, tflite_grid)

__all__ = ["RNNPoolQuantizeConfig", "RNNPoolWeightQuantizer", "InputGrid", "quantize_model",
           "quantize_annotate_model", "quantize_annotate_layer", "quantize_apply", "link_input_quantizers",
           "find_input_quantizer", "check_quantizable", "load_model", "quantize_scope", "is_quantized_model",
           "rnnpool_wrappers", "custom_objects", "calibrate_ranges", "QuantizeScheme", "tflite_grid"]
