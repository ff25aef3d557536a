"""The Keras this package uses: tf-keras (Keras 2), whatever tf.keras points at."""

import tf_keras as keras

import rnnpool_tflm  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

__all__ = ["keras"]
