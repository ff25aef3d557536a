"""Models for the QAT/convert/check tests (issue 4), trained once per test session.

`acceptance(hard)` trains, quantizes (QAT), converts and checks the acceptance
model; the result is cached for the session (functools.lru_cache), so every test
module reuses it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import numpy as np

from rnnpool_tflm.analysis.datasets import line_orientation
from rnnpool_tflm.core.keras import keras
from rnnpool_tflm.layer.rnnpool import RNNPool

layers = keras.layers

TRAIN_SAMPLES, VAL_SAMPLES = 2048, 512
FLOAT_EPOCHS, QAT_EPOCHS = 6, 1


def inverted_residual(x, expand: int, name: str):
    """MobileNetV2 block: 1x1 expand -> BN -> ReLU6 -> 3x3 depthwise -> BN -> ReLU6 -> 1x1 project -> BN, + x."""
    channels = int(x.shape[-1])
    y = layers.Conv2D(channels * expand, 1, use_bias=False, name=f"{name}_expand")(x)
    y = layers.BatchNormalization(name=f"{name}_expand_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_expand_relu6")(y)
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = layers.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = layers.ReLU(6.0, name=f"{name}_dw_relu6")(y)
    y = layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(name=f"{name}_project_bn")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def acceptance_model(hard: bool = False, size: int = 32, seed: int = 0, classes: int = 4):
    """Conv2D(stride 2) -> RNNPool(patch 8, stride 4, h1 = h2 = 16) -> two inverted-residual
    blocks -> GlobalAveragePooling -> Dense. `hard`: RNNPool with hard_sigmoid/hard_tanh."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1), name="image")
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="stem")(inputs)
    x = layers.ReLU(name="stem_relu")(x)
    x = RNNPool(
        8,
        4,
        (16, 16),
        gate_activation="hard_sigmoid" if hard else "sigmoid",
        update_activation="hard_tanh" if hard else "tanh",
        name="rnnpool",
    )(x)
    x = inverted_residual(x, 2, "block1")
    x = inverted_residual(x, 2, "block2")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="rnnpool_acceptance_hard" if hard else "rnnpool_acceptance")


def mixed_functional_model(seed: int = 1):
    """Conv2D/BatchNormalization/ReLU6, MaxPooling, DepthwiseConv2D, Add, AveragePooling,
    RNNPool (same padding, unequal patch sides) and two outputs, one the RNNPool's own."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((20, 20, 3), name="img")
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(i)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.MaxPooling2D(2)(x)
    y = layers.DepthwiseConv2D(3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU(6.0)(y)
    x = layers.Add()([x, y])
    x = layers.AveragePooling2D(1)(x)
    r = RNNPool((4, 3), (2, 3), (6, 5), padding="same", name="rp")(x)
    out = layers.Dense(3, name="head")(layers.GlobalAveragePooling2D()(r))
    return keras.Model(i, [out, r], name="mixed")


def sequential_rnnpool_first(seed: int = 2):
    """Sequential, with the RNNPool reading the model input directly."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((16, 16, 3)), RNNPool(4, 4, (8, 8), name="rp"), layers.Flatten(), layers.Dense(5)], name="seq"
    )


def two_rnnpools(seed: int = 3):
    """RNNPool feeding RNNPool directly (the second with hard activations)."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((24, 24, 2))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(i)
    x = RNNPool(4, 2, (8, 4), name="rp1")(x)
    x = RNNPool(2, 2, (6, 6), gate_activation="hard_sigmoid", update_activation="hard_tanh", name="rp2")(x)
    return keras.Model(i, layers.Dense(2)(layers.Flatten()(x)), name="two")


def compile_for_training(model, lr: float = 1e-2):
    model.compile(keras.optimizers.Adam(lr), keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    return model


@functools.cache
def line_data():
    x, y = line_orientation(TRAIN_SAMPLES, seed=0)
    xv, yv = line_orientation(VAL_SAMPLES, seed=1)
    return x, y, xv, yv


@dataclasses.dataclass
class Acceptance:
    float_model: object
    qat_model: object
    float_accuracy: float
    qat_accuracy: float
    conversion: object  # convert.ConversionResult
    report: object  # check.CheckReport on the validation data
    float_io: bool


@functools.cache
def acceptance(hard: bool) -> Acceptance:
    """Float training, QAT (ranges calibrated, one fine-tuning epoch), conversion
    (int8 I/O; float I/O for the hard model) and the check on the validation set."""
    from rnnpool_tflm.check import checker as check
    from rnnpool_tflm.convert import keras_converter as convert
    from rnnpool_tflm.quantize import model as quantize

    x, y, xv, yv = line_data()
    model = compile_for_training(acceptance_model(hard=hard))
    model.fit(x, y, epochs=FLOAT_EPOCHS, batch_size=64, verbose=0)
    float_accuracy = float(model.evaluate(xv, yv, verbose=0)[1])
    qat = quantize.quantize_model(model)
    quantize.calibrate_ranges(qat, x)
    compile_for_training(qat, 1e-3)
    qat.fit(x, y, epochs=QAT_EPOCHS, batch_size=64, verbose=0)
    qat_accuracy = float(qat.evaluate(xv, yv, verbose=0)[1])
    result = convert.convert_model(qat, float_io=hard)
    report = check.check_model(result.tflite, keras_model=qat, data=([xv], yv), measure_arena=False)
    return Acceptance(model, qat, float_accuracy, qat_accuracy, result, report, hard)


def random_images(model, n: int = 64, seed: int = 0, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).uniform(low, high, (n,) + shape).astype(np.float32)


def find_layer(model, name: str) -> Optional[object]:
    for layer in model.layers:
        if layer.name == name or getattr(getattr(layer, "layer", None), "name", None) == name:
            return layer
    return None
