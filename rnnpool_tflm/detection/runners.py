"""A face detector behind one interface, wherever it runs: a Keras model (float or QAT) or a
.tflite on the host (runtime.host), or the firmware on the emulated Cortex-M4 (QEMU).

    runner = open_detector("face_m4.tflite")            # or a Keras model / path, emulate=True
    detections = runner.detect(images)                  # float32 [N, rows, cols, ch] in [0, 1]

Host runners post-process with the NumPy reference (postprocess.py) and `config`; the
emulated one prints its boxes from the C post-processing on the device (on_device.py, with
the device's configuration), one firmware run per image.
"""

from __future__ import annotations

import pathlib
import tempfile
from typing import List, Optional, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from .detectors import detector_priors, prior_config_for
from .heads import HeadLayout
from .on_device import DEVICE_CONFIG, tflite_layout, tflite_setup
from .postprocess import Detections, PostprocessConfig, dequantize, detect
from .priors import PriorConfig, Priors, make_priors

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


class DetectorRunner:
    """What every runner has: the input it takes, the heads, the priors, a name."""

    kind: str
    name: str
    input_shape: Tuple[int, int, int]  # (rows, cols, channels)
    layout: HeadLayout
    priors: Priors

    def detect(
        self, images: np.ndarray, config: PostprocessConfig = PostprocessConfig(), batch_size: int = 16
    ) -> List[Detections]:
        raise NotImplementedError

    def check_images(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or tuple(images.shape[1:]) != self.input_shape:
            raise RNNPoolError(
                f"{self.name} takes images [N, {', '.join(map(str, self.input_shape))}], got {list(images.shape)}"
            )
        return images


class KerasRunner(DetectorRunner):
    kind = "keras"

    def __init__(self, model, name: str = "Keras model", prior_config: Optional[PriorConfig] = None):
        import tensorflow as tf

        self.model, self.name = model, name
        self.layout, self.priors = detector_priors(model, prior_config)
        self.input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def outputs(self, images: np.ndarray, batch_size: int = 16) -> List[np.ndarray]:
        import tensorflow as tf

        images = self.check_images(images)
        parts = [
            [np.asarray(o) for o in self._forward(tf.constant(images[i : i + batch_size]))]
            for i in range(0, len(images), batch_size)
        ]
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    def detect(self, images, config=PostprocessConfig(), batch_size=16):
        return detect(self.outputs(images, batch_size), self.layout, self.priors, config)


class TfliteRunner(DetectorRunner):
    """A converted detector run on the host (tflite-micro interpreter + the RNNPool C kernel)."""

    kind = "tflite"

    def __init__(self, model: bytes, name: str = ".tflite model", prior_config: Optional[PriorConfig] = None):
        from ..runtime.host import HostModel
        from ..tflite.model_info import read_model_info

        self.tflite, self.name = bytes(model), name
        info = read_model_info(self.tflite)
        self.layout, (rows, cols) = tflite_layout(info)
        self.priors = make_priors((rows, cols), self.layout.feature_maps, prior_config or prior_config_for(self.layout))
        self.input_shape = (rows, cols, int(info.inputs[0].shape[3]))
        self.host = HostModel(self.tflite)

    def outputs(self, images: np.ndarray) -> List[np.ndarray]:
        """The outputs as float32 (int8 ones dequantized with their scale and zero point)."""
        from ..runtime.host import quantize_inputs

        images = self.check_images(images)
        raw = self.host.run([quantize_inputs(self.host.input_details[0], images)]).outputs
        out = []
        for array, details in zip(raw, self.host.output_details, strict=True):
            if array.dtype == np.int8:
                array = dequantize(array, details["scale"], details["zero_point"])
            out.append(np.asarray(array, np.float32))
        return out

    def detect(self, images, config=PostprocessConfig(), batch_size=16):
        images = self.check_images(images)
        found = []
        for i in range(0, len(images), batch_size):
            found += detect(self.outputs(images[i : i + batch_size]), self.layout, self.priors, config)
        return found


class EmulatedRunner(TfliteRunner):
    """The firmware on the emulated Cortex-M4, one run per image; the boxes are the ones the
    device printed (C post-processing, device configuration: top_k and nms_top_k of `config`)."""

    kind = "emulated"

    def __init__(
        self,
        model: bytes,
        name: str = ".tflite model",
        prior_config: Optional[PriorConfig] = None,
        machine: Optional[str] = None,
        log=None,
    ):
        super().__init__(model, name, prior_config)
        self.machine, self.log = machine, log
        self.runs = []  # the deploy.emulate.Emulation of each image

    def detect(self, images, config=DEVICE_CONFIG, batch_size=1):
        from ..deploy import emulate as firmware_run

        images = self.check_images(images)
        setup = tflite_setup(self.tflite, config, self.priors.config)
        found = []
        with tempfile.TemporaryDirectory(prefix="rnnpool-detect-") as tmp:
            model_path = pathlib.Path(tmp) / f"{pathlib.Path(self.name).stem or 'model'}.tflite"
            model_path.write_bytes(self.tflite)
            for i, image in enumerate(images):
                input_path = pathlib.Path(tmp) / f"image{i}.npy"
                np.save(input_path, image[None])
                run = (
                    firmware_run.emulate_model(model_path, input_path, self.machine, log=self.log, detector=setup)
                    if self.machine
                    else firmware_run.measure_arena(model_path, input_path, log=self.log, detector=setup)
                )
                if not run.output_matches_host:
                    raise RNNPoolError(f"image {i}: the emulated model's outputs differ from the host's")
                self.runs.append(run)
                boxes = run.run.boxes or []
                found.append(
                    Detections(
                        np.array([b[:4] for b in boxes], np.float32).reshape(-1, 4),
                        np.array([b[4] for b in boxes], np.float32),
                        np.array([b[5] for b in boxes], np.int32),
                        np.array([b[6] for b in boxes], np.int32),
                    )
                )
        return found


def _is_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == b"TFL3"


def open_detector(
    model, *, emulate: bool = False, prior_config: Optional[PriorConfig] = None, machine: Optional[str] = None, log=None
) -> DetectorRunner:
    """A runner for a Keras model object, a .keras/.h5/SavedModel path, a .tflite path or .tflite
    bytes; `emulate` runs a .tflite on the emulated Cortex-M4 (needs TFLM_DIR)."""
    if isinstance(model, (bytes, bytearray)):
        data, name = bytes(model), ".tflite model"
    elif hasattr(model, "layers"):
        if emulate:
            raise RNNPoolError("--emulate runs a converted .tflite; convert the Keras model first")
        return KerasRunner(model, getattr(model, "name", "Keras model"), prior_config)
    else:
        path = pathlib.Path(model)
        if not path.exists():
            raise RNNPoolError(f"model {path} does not exist")
        name = path.name
        data = path.read_bytes() if path.is_file() else b""
        if not _is_tflite(data):
            if emulate:
                raise RNNPoolError(f"--emulate runs a converted .tflite, and {path} is not one")
            if path.is_file() and path.suffix.lower() not in KERAS_SUFFIXES:
                raise RNNPoolError(
                    f"{path} is neither a .tflite flatbuffer nor a Keras model "
                    f"({', '.join(KERAS_SUFFIXES)} or a SavedModel folder)"
                )
            from ..quantize.model import load_model

            try:
                keras_model = load_model(str(path))
            except (OSError, ValueError, ImportError) as exc:
                raise RNNPoolError(f"cannot load Keras model {path}: {exc}") from None
            return KerasRunner(keras_model, name, prior_config)
    if not _is_tflite(data):
        raise RNNPoolError("the model bytes are not a .tflite flatbuffer (no 'TFL3' identifier)")
    if emulate:
        return EmulatedRunner(data, name, prior_config, machine, log)
    return TfliteRunner(data, name, prior_config)


def runner_kind_label(runner: DetectorRunner) -> str:
    return {
        "keras": "Keras on the host",
        "tflite": "int8 .tflite on the host",
        "emulated": "firmware on the emulated Cortex-M4",
    }[runner.kind]


__all__ = ["DetectorRunner", "KerasRunner", "TfliteRunner", "EmulatedRunner", "open_detector", "runner_kind_label"]
