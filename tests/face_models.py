"""A small Face-M4 for the post-processing, detect and eval-face tests, built once per session.

The zoo's Face-M4 at 96x128 (the same heads and priors as at 320x240, 864 priors), seeded
random weights with the heads rescaled so that their outputs spread over a few units on
synthetic faces (an untrained detector's heads output nearly zero: every score would be
0.5 and every box its prior). Not a trained detector: tests use it for plumbing and for
C-vs-reference comparisons, never for accuracy.
"""

from __future__ import annotations

import functools

import numpy as np

INPUT_SHAPE = (96, 128, 1)


@functools.cache
def synthetic_images(count: int = 8, seed: int = 5):
    """(uint8 images [count, 96, 128, 1], boxes per image) from the built-in synthetic faces."""
    from rnnpool_tflm.detection.synthetic import synthetic_faces

    return synthetic_faces(count, INPUT_SHAPE, seed=seed)


@functools.cache
def face_m4(seed: int = 0):
    from rnnpool_tflm.core.keras import keras
    from rnnpool_tflm.detection.detectors import build_face_detector

    keras.utils.set_random_seed(seed)
    model = build_face_detector("face_m4", INPUT_SHAPE)
    images = synthetic_images()[0].astype(np.float32) / 255.0
    outputs = model.predict(images, verbose=0)
    for name, output, target in zip(model.output_names, outputs, (1.0, 3.0) * 4, strict=True):
        layer = model.get_layer(name)  # loc0, conf0, ...: the head convolutions
        spread = float(np.std(output))
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * (target / max(spread, 1e-6)), bias])
    return model


@functools.cache
def face_m4_tflite(seed: int = 0) -> bytes:
    """face_m4(seed) converted to int8 (post-training quantization on the synthetic images)."""
    from rnnpool_tflm.convert import keras_converter

    images = synthetic_images()[0].astype(np.float32) / 255.0
    return keras_converter.convert(face_m4(seed), images)
