"""Run by test_face_training.py in its own process (logical devices must be set before TensorFlow
starts, and would disturb other tests): the same short QAT run of Face-M4 on one device and under
MirroredStrategy over two logical CPUs, float and QAT. Prints JSON: per run, the loss after every
step, the validation losses and the final weights' checksum.

    python distributed_face_training.py RUN_ROOT
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

import rnnpool_tflm  # noqa: E402,F401  (Keras 2 before TensorFlow)

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from rnnpool_tflm.core.keras import keras  # noqa: E402
from rnnpool_tflm.detection.training import TrainSettings, train_face  # noqa: E402


class StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))


def main(root: pathlib.Path) -> None:
    runs = {}
    for name, qat, strategy, devices in (
        ("float_one", False, "default", None),
        ("float_mirrored", False, "mirrored", ["/cpu:0", "/cpu:1"]),
        ("qat_one", True, "default", None),
        ("qat_mirrored", True, "mirrored", ["/cpu:0", "/cpu:1"]),
    ):
        settings = TrainSettings(
            data="synthetic",
            model="face_m4",
            epochs=2,
            batch_size=8,
            learning_rate=3e-3,
            qat=qat,
            input_size=(48, 64),
            train_images=32,
            val_images=8,
            seed=3,
        )
        steps = StepLosses()
        result = train_face(
            settings,
            root / name,
            strategy=strategy,
            devices=devices,
            tensorboard=False,
            callbacks=[steps],
            log=lambda line: None,
        )
        weights = result.detector.get_weights()
        runs[name] = {
            "replicas": result.replicas,
            "step_losses": steps.losses,
            "val_loss": result.history["val_loss"],
            "weights_abs_sum": float(sum(abs(w.astype("float64")).sum() for w in weights)),
        }
    print(json.dumps(runs))


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
