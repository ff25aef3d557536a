"""The C post-processing (custom_ops/detection) for a detector: its DetectorSetup from the
reference's layout, priors and configuration, or from a converted .tflite; its results as
Detections; and the NumPy reference run from the same setup, for comparisons.

The firmware cannot hold the reference's default candidate lists (nms_top_k 5000, top_k 750:
75 KB of scratch for Face-M4), so exported detectors use DEVICE_CONFIG: the best 200
candidates enter NMS and at most 50 boxes come out (5 KB of scratch, 1.4 KB of boxes). The
host reproduces the device's boxes by post-processing with the same configuration.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from ..runtime import detection_native
from ..runtime.detection_native import DetectorSetup, HeadGeometry
from ..tflite.model_info import ModelInfo, read_model_info
from .detectors import prior_config_for
from .heads import HeadLayout
from .postprocess import Detections, PostprocessConfig, dequantize, detect
from .priors import PriorConfig, Priors, make_priors

DEVICE_CONFIG = PostprocessConfig(nms_top_k=200, top_k=50)


def setup_from(layout: HeadLayout, priors: Priors, config: PostprocessConfig = DEVICE_CONFIG) -> DetectorSetup:
    """The C description of the reference's post-processing (same layout, priors, configuration)."""
    if layout.feature_maps != priors.feature_maps:
        raise RNNPoolError(f"the heads {layout.feature_maps} and the priors {priors.feature_maps} differ")
    heads = tuple(
        HeadGeometry(rows, cols, int(stride), float(anchor))
        for (rows, cols), stride, anchor in zip(
            layout.feature_maps, priors.strides, priors.config.anchor_sizes, strict=True
        )
    )
    setup = DetectorSetup(
        image_size=tuple(priors.image_size),
        heads=heads,
        num_classes=layout.num_classes,
        maxout_first=layout.maxout_first,
        variances=tuple(float(v) for v in priors.variances),
        conf_threshold=float(config.conf_threshold),
        nms_iou=float(config.nms_iou),
        nms_top_k=int(config.nms_top_k),
        top_k=int(config.top_k),
    )
    detection_native.check_float32_values(setup)
    status = detection_native.validate(setup)
    if status != 0:
        raise detection_native.DetectionError("the detector's post-processing", status)
    return setup


def reference_parts(setup: DetectorSetup) -> Tuple[HeadLayout, Priors, PostprocessConfig]:
    """The NumPy reference's layout, priors and configuration for a setup."""
    maps = tuple((h.rows, h.cols) for h in setup.heads)
    layout = HeadLayout(maps, setup.num_classes, setup.maxout_first)
    priors = make_priors(
        setup.image_size, maps, PriorConfig(tuple(h.anchor for h in setup.heads), tuple(setup.variances))
    )
    if priors.strides != tuple(h.stride for h in setup.heads):
        raise RNNPoolError(
            f"the setup's strides {[h.stride for h in setup.heads]} are not the priors' "
            f"{list(priors.strides)} for these feature maps"
        )
    config = PostprocessConfig(setup.conf_threshold, setup.nms_iou, setup.nms_top_k, setup.top_k)
    return layout, priors, config


def tflite_layout(info: ModelInfo) -> Tuple[HeadLayout, Tuple[int, int]]:
    """The head layout of a converted detector and its input image (rows, cols); RNNPoolError
    when the outputs are not (loc, conf) pairs of NHWC maps of batch 1."""
    if len(info.inputs) != 1 or len(info.inputs[0].shape) != 4:
        raise RNNPoolError("a detector has one NHWC image input")
    for t in info.outputs:
        if len(t.shape) != 4 or t.shape[0] != 1:
            raise RNNPoolError(
                f"output {t.name!r} has shape {t.shape}; a detector's outputs are [1, rows, cols, channels] maps"
            )
    layout = HeadLayout.from_output_shapes([t.shape[1:] for t in info.outputs])
    return layout, (int(info.inputs[0].shape[1]), int(info.inputs[0].shape[2]))


def tflite_setup(
    model: bytes, config: PostprocessConfig = DEVICE_CONFIG, prior_config: Optional[PriorConfig] = None
) -> DetectorSetup:
    """The C post-processing of a converted detector (the zoo's prior configuration for its head
    count unless `prior_config` is given); RNNPoolError saying why when it is not a detector."""
    info = read_model_info(bytes(model))
    layout, image_size = tflite_layout(info)
    for t in info.outputs:
        if np.dtype(t.dtype) not in (np.int8, np.float32):
            raise RNNPoolError(
                f"output {t.name!r} is {np.dtype(t.dtype).name}; the post-processing reads int8 or float32 maps"
            )
    priors = make_priors(image_size, layout.feature_maps, prior_config or prior_config_for(layout))
    return setup_from(layout, priors, config)


def detector_setup_or_none(model: bytes, config: PostprocessConfig = DEVICE_CONFIG) -> Optional[DetectorSetup]:
    """tflite_setup, or None for a model that is not a detector (what `export`/`emulate` use to
    decide whether the firmware prints boxes)."""
    try:
        return tflite_setup(model, config)
    except RNNPoolError:
        return None


def output_quantization(info: ModelInfo) -> Tuple[Sequence[float], Sequence[int]]:
    return [t.scale for t in info.outputs], [t.zero_point for t in info.outputs]


def as_detections(found: detection_native.NativeDetections) -> Detections:
    return Detections(found.boxes, found.scores, found.labels, found.priors)


def native_detect(
    setup: DetectorSetup,
    outputs: Sequence[np.ndarray],
    scales: Sequence[float] = None,
    zero_points: Sequence[int] = None,
) -> Detections:
    """The C post-processing of one image's outputs (int8 with their quantization, or float32)."""
    return as_detections(detection_native.run_detection(setup, [np.asarray(o) for o in outputs], scales, zero_points))


def reference_detect(
    setup: DetectorSetup,
    outputs: Sequence[np.ndarray],
    scales: Sequence[float] = None,
    zero_points: Sequence[int] = None,
) -> Detections:
    """The NumPy reference on the same outputs with the setup's configuration."""
    layout, priors, config = reference_parts(setup)
    if len(outputs) != 2 * len(setup.heads):
        raise RNNPoolError(f"the detector has {2 * len(setup.heads)} outputs (loc, conf per head), got {len(outputs)}")
    real = []
    for i, (o, shape) in enumerate(zip(outputs, setup.output_shapes(), strict=True)):
        o = np.asarray(o).reshape((1, *shape))
        if o.dtype == np.int8:
            if scales is None or zero_points is None:
                raise RNNPoolError("int8 outputs need their scales and zero points")
            o = dequantize(o, scales[i], zero_points[i])
        real.append(o.astype(np.float32, copy=False))
    return detect(real, layout, priors, config)[0]


__all__ = [
    "DEVICE_CONFIG",
    "setup_from",
    "reference_parts",
    "tflite_layout",
    "tflite_setup",
    "detector_setup_or_none",
    "output_quantization",
    "as_detections",
    "native_detect",
    "reference_detect",
]
