"""Keras model -> int8 .tflite, each RNNPool layer one CUSTOM `RNNPool` op."""

from .keras_converter import ConversionResult, convert, convert_model

__all__ = ["ConversionResult", "convert", "convert_model"]
