"""rnnpool-tflm: RNNPool from Keras to TensorFlow Lite Micro on Cortex-M4."""

import os

# tfmot 0.8 and the TFLite converter path we rely on speak the Keras 2 API;
# TensorFlow 2.16+ picks Keras 3 for tf.keras unless this is set before import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"

# TFLM commit the tflite-micro wheel was built from; TFLM_DIR checkouts must match.
TFLM_COMMIT = "90b983c2b3f1480642e040bbd2ddb37b998f3424"

__all__ = ["__version__", "TFLM_COMMIT"]
