"""ctypes bindings to the C detector post-processing (custom_ops/detection/detection.h).

The C code is compiled into the same host library as the RNNPool kernel (setup.py).
`DetectorSetup` is the plain description of a detector's post-processing that the C
needs (image and head geometry, classes, variances, thresholds, top-ks): the detection
package builds it from a model, export writes it into the firmware's generated sources,
and `run_detection` runs the C on the host.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from .native import aligned_buffer, bind, status_enum, status_enum_name

MAX_HEADS = 8  # DETECTION_MAX_HEADS
INT8, FLOAT32 = 0, 1  # detection_tensor_type


class CHead(ctypes.Structure):
    _fields_ = [
        ("rows", ctypes.c_int32),
        ("cols", ctypes.c_int32),
        ("stride", ctypes.c_int32),
        ("anchor", ctypes.c_float),
    ]


class CDims(ctypes.Structure):
    _fields_ = [
        ("image_rows", ctypes.c_int32),
        ("image_cols", ctypes.c_int32),
        ("num_heads", ctypes.c_int32),
        ("num_classes", ctypes.c_int32),
        ("maxout_first", ctypes.c_int32),
        ("heads", CHead * MAX_HEADS),
    ]


class CParams(ctypes.Structure):
    _fields_ = [
        ("variance_center", ctypes.c_float),
        ("variance_size", ctypes.c_float),
        ("conf_threshold", ctypes.c_float),
        ("nms_iou", ctypes.c_float),
        ("nms_top_k", ctypes.c_int32),
        ("top_k", ctypes.c_int32),
    ]


class CTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("type", ctypes.c_int32),
        ("elements", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("zero_point", ctypes.c_int32),
    ]


class CBox(ctypes.Structure):
    _fields_ = [
        ("x1", ctypes.c_float),
        ("y1", ctypes.c_float),
        ("x2", ctypes.c_float),
        ("y2", ctypes.c_float),
        ("score", ctypes.c_float),
        ("label", ctypes.c_int32),
        ("prior", ctypes.c_int32),
    ]


_SIGNATURES = {
    "detection_validate": (ctypes.c_int, [ctypes.POINTER(CDims), ctypes.POINTER(CParams)]),
    "detection_scratch_bytes": (ctypes.c_size_t, [ctypes.POINTER(CDims), ctypes.POINTER(CParams)]),
    "detection_num_priors": (ctypes.c_int32, [ctypes.POINTER(CDims)]),
    "detection_prior": (ctypes.c_int, [ctypes.POINTER(CDims), ctypes.c_int32, ctypes.POINTER(ctypes.c_float)]),
    "detection_run": (
        ctypes.c_int,
        [
            ctypes.POINTER(CDims),
            ctypes.POINTER(CParams),
            ctypes.POINTER(CTensor),
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(CBox),
            ctypes.c_int32,
            ctypes.POINTER(ctypes.c_int32),
        ],
    ),
    "detection_expf": (ctypes.c_float, [ctypes.c_float]),
    "detection_status_str": (ctypes.c_char_p, [ctypes.c_int]),
    "detection_status_name": (ctypes.c_char_p, [ctypes.c_int]),
}


@functools.lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL:
    return bind(_SIGNATURES)


class DetectionError(RNNPoolError):
    """A status other than DETECTION_OK; `.name` is its enumerator."""

    def __init__(self, where: str, status: int):
        self.status = int(status)
        self.name = status_name(status)
        super().__init__(f"{where}: {_lib().detection_status_str(self.status).decode()} ({self.name})")


@functools.lru_cache(maxsize=1)
def status_codes() -> Dict[str, int]:
    """{"DETECTION_OK": 0, ...}, read from the library."""
    return status_enum(_lib(), "detection")


def status_name(status: int) -> str:
    return status_enum_name(_lib(), "detection", status)


# -- the description of a detector's post-processing ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HeadGeometry:
    rows: int
    cols: int
    stride: int  # image pixels between neighbouring priors
    anchor: float  # prior side in pixels


@dataclasses.dataclass(frozen=True)
class DetectorSetup:
    """What the post-processing needs to know about a detector, in plain numbers.

    Outputs are loc0, conf0, loc1, conf1, ... (NHWC, batch 1); `output_scales` /
    `output_zero_points` are their int8 quantization (ignored for float32 outputs)."""

    image_size: Tuple[int, int]  # (rows, cols)
    heads: Tuple[HeadGeometry, ...]
    num_classes: int  # background included
    maxout_first: bool
    variances: Tuple[float, float]
    conf_threshold: float
    nms_iou: float
    nms_top_k: int
    top_k: int

    @property
    def num_priors(self) -> int:
        return sum(h.rows * h.cols for h in self.heads)

    def conf_channels(self, head: int) -> int:
        return self.num_classes + (2 if head == 0 and self.maxout_first else 0)

    def output_shapes(self) -> List[Tuple[int, int, int]]:
        shapes = []
        for i, h in enumerate(self.heads):
            shapes += [(h.rows, h.cols, 4), (h.rows, h.cols, self.conf_channels(i))]
        return shapes

    def as_dict(self) -> dict:
        """JSON-ready (lists, not tuples); from_dict reads it back."""
        d = dataclasses.asdict(self)
        d.update(
            image_size=list(self.image_size),
            variances=list(self.variances),
            heads=[dataclasses.asdict(h) for h in self.heads],
        )
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DetectorSetup:
        return cls(
            tuple(d["image_size"]),
            tuple(HeadGeometry(**h) for h in d["heads"]),
            int(d["num_classes"]),
            bool(d["maxout_first"]),
            tuple(d["variances"]),
            float(d["conf_threshold"]),
            float(d["nms_iou"]),
            int(d["nms_top_k"]),
            int(d["top_k"]),
        )

    def c_structs(self) -> Tuple[CDims, CParams]:
        if len(self.heads) > MAX_HEADS:
            raise RNNPoolError(
                f"the C post-processing takes at most {MAX_HEADS} heads, the detector has {len(self.heads)}"
            )
        dims = CDims(
            image_rows=self.image_size[0],
            image_cols=self.image_size[1],
            num_heads=len(self.heads),
            num_classes=self.num_classes,
            maxout_first=int(self.maxout_first),
        )
        for i, h in enumerate(self.heads):
            dims.heads[i] = CHead(h.rows, h.cols, h.stride, h.anchor)
        params = CParams(
            self.variances[0], self.variances[1], self.conf_threshold, self.nms_iou, self.nms_top_k, self.top_k
        )
        return dims, params


def check_float32_values(setup: DetectorSetup) -> None:
    """The C reads anchors, variances and thresholds as float32; a value that is not one would
    make the C and the float64 reference compute priors differently."""
    values = [h.anchor for h in setup.heads]
    if any(not math.isfinite(v) or float(np.float32(v)) != v for v in values):
        raise RNNPoolError(f"anchor sizes must be float32 values for the C post-processing, got {values}")


# -- calls -----------------------------------------------------------------------------------------------


def _check(where: str, status: int) -> None:
    if status != 0:
        raise DetectionError(where, status)


def validate(setup: DetectorSetup) -> int:
    """The C validator's status (0 = usable)."""
    dims, params = setup.c_structs()
    return int(_lib().detection_validate(ctypes.byref(dims), ctypes.byref(params)))


def scratch_bytes(setup: DetectorSetup) -> int:
    dims, params = setup.c_structs()
    _check("detection_validate", _lib().detection_validate(ctypes.byref(dims), ctypes.byref(params)))
    return int(_lib().detection_scratch_bytes(ctypes.byref(dims), ctypes.byref(params)))


def priors(setup: DetectorSetup) -> np.ndarray:
    """[P, 4] (cx, cy, w, h) as the C generates them."""
    dims, _ = setup.c_structs()
    count = int(_lib().detection_num_priors(ctypes.byref(dims)))
    if count == 0:
        _check("detection_num_priors", validate(setup))
    out = np.empty((count, 4), np.float32)
    one = (ctypes.c_float * 4)()
    for i in range(count):
        _check("detection_prior", _lib().detection_prior(ctypes.byref(dims), i, one))
        out[i] = one[:]
    return out


def expf(x) -> np.ndarray:
    """detection_expf elementwise (for tests)."""
    x = np.asarray(x, np.float32)
    fn = _lib().detection_expf
    return np.array([fn(float(v)) for v in x.reshape(-1)], np.float32).reshape(x.shape)


@dataclasses.dataclass(frozen=True)
class NativeDetections:
    boxes: np.ndarray  # [k, 4] float32 normalised (x1, y1, x2, y2)
    scores: np.ndarray  # [k] float32
    labels: np.ndarray  # [k] int32
    priors: np.ndarray  # [k] int32


def tensors_for(
    setup: DetectorSetup,
    outputs: Sequence[np.ndarray],
    scales: Sequence[float] = None,
    zero_points: Sequence[int] = None,
) -> Tuple[ctypes.Array, list]:
    """The C tensor array for one image's outputs (int8 with their quantization, or float32),
    and the arrays it points into (keep them alive)."""
    n = 2 * len(setup.heads)
    if len(outputs) != n:
        raise RNNPoolError(f"the detector has {n} outputs (loc, conf per head), got {len(outputs)}")
    scales = list(scales) if scales is not None else [0.0] * n
    zero_points = list(zero_points) if zero_points is not None else [0] * n
    if len(scales) != n or len(zero_points) != n:
        raise RNNPoolError(f"need {n} scales and zero points, got {len(scales)} and {len(zero_points)}")
    table, keep = (CTensor * n)(), []
    for i, (array, scale, zero) in enumerate(zip(outputs, scales, zero_points, strict=True)):
        array = np.asarray(array)
        if array.dtype == np.int8:
            kind = INT8
        elif array.dtype == np.float32:
            kind = FLOAT32
        else:
            raise RNNPoolError(f"output {i} is {array.dtype}; the post-processing takes int8 or float32")
        array = np.ascontiguousarray(array)
        keep.append(array)
        table[i] = CTensor(array.ctypes.data, kind, int(array.size), float(scale), int(zero))
    return table, keep


def run_detection(
    setup: DetectorSetup,
    outputs: Sequence[np.ndarray],
    scales: Sequence[float] = None,
    zero_points: Sequence[int] = None,
    *,
    scratch_size: int = None,
    box_capacity: int = None,
) -> NativeDetections:
    """The C post-processing of one image's outputs (loc0, conf0, ...; batch 1 or none).
    scratch_size / box_capacity override the buffer sizes (tests of the C's checks)."""
    dims, params = setup.c_structs()
    _check("detection_validate", _lib().detection_validate(ctypes.byref(dims), ctypes.byref(params)))
    table, keep = tensors_for(setup, outputs, scales, zero_points)
    needed = int(_lib().detection_scratch_bytes(ctypes.byref(dims), ctypes.byref(params)))
    scratch = aligned_buffer(max(needed if scratch_size is None else scratch_size, 1))
    capacity = setup.top_k if box_capacity is None else box_capacity
    boxes = (CBox * max(capacity, 1))()
    count = ctypes.c_int32(-1)
    _check(
        "detection_run",
        _lib().detection_run(
            ctypes.byref(dims),
            ctypes.byref(params),
            table,
            scratch.ctypes.data,
            needed if scratch_size is None else scratch_size,
            boxes,
            capacity,
            ctypes.byref(count),
        ),
    )
    del keep
    found = boxes[: count.value]
    return NativeDetections(
        boxes=np.array([[b.x1, b.y1, b.x2, b.y2] for b in found], np.float32).reshape(-1, 4),
        scores=np.array([b.score for b in found], np.float32),
        labels=np.array([b.label for b in found], np.int32),
        priors=np.array([b.prior for b in found], np.int32),
    )


__all__ = [
    "DetectorSetup",
    "HeadGeometry",
    "NativeDetections",
    "DetectionError",
    "run_detection",
    "validate",
    "scratch_bytes",
    "priors",
    "expf",
    "status_codes",
    "status_name",
    "check_float32_values",
]
