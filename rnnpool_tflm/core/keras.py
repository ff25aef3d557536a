"""The Keras this package uses: tf-keras (Keras 2), whatever tf.keras points at."""

import rnnpool_tflm  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tf_keras as keras

__all__ = ["keras"]
