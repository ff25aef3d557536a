"""ctypes bindings to the firmware's narrow CONV_2D kernel (custom_ops/conv/narrow_conv_s8.h),
compiled into the host library: its portable C path, for tests against TFLM's CONV_2D.
(The Cortex-M4 path runs in the firmware, registered by custom_ops/conv/narrow_conv_tflm.cc.)"""

from __future__ import annotations

import ctypes
import functools
from typing import Optional, Sequence

import numpy as np

from ..core.errors import RNNPoolError
from . import native

_I8P = ctypes.POINTER(ctypes.c_int8)
_I32P = ctypes.POINTER(ctypes.c_int32)


class CDims(ctypes.Structure):
    _fields_ = [("n", ctypes.c_int32), ("h", ctypes.c_int32), ("w", ctypes.c_int32), ("c", ctypes.c_int32)]


class CParams(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int32)
        for name in (
            "input_offset",
            "output_offset",
            "stride_h",
            "stride_w",
            "pad_h",
            "pad_w",
            "act_min",
            "act_max",
        )
    ]


class CQuant(ctypes.Structure):
    _fields_ = [("multiplier", _I32P), ("shift", _I32P)]


class NarrowConvError(RNNPoolError):
    """A status other than NARROW_CONV_OK; `.status` is the code."""

    def __init__(self, status: int):
        self.status = int(status)
        super().__init__(f"narrow CONV_2D: {library().narrow_conv_status_str(self.status).decode()}")


_SIGNATURES = {
    "narrow_conv_s8_check": (
        ctypes.c_int,
        [ctypes.POINTER(CParams), ctypes.POINTER(CDims), ctypes.POINTER(CDims), ctypes.POINTER(CDims)],
    ),
    "narrow_conv_s8": (
        ctypes.c_int,
        [
            ctypes.POINTER(CParams),
            ctypes.POINTER(CQuant),
            ctypes.POINTER(CDims),
            _I8P,
            ctypes.POINTER(CDims),
            _I8P,
            _I32P,
            ctypes.POINTER(CDims),
            _I8P,
        ],
    ),
    "narrow_conv_status_str": (ctypes.c_char_p, [ctypes.c_int]),
}


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    return native.bind(_SIGNATURES)


def _dims(shape: Sequence[int]) -> CDims:
    if len(shape) != 4:
        raise ValueError(f"narrow CONV_2D: shapes are rank 4 (NHWC / OHWI), got {tuple(shape)}")
    return CDims(*(int(v) for v in shape))


def _ptr(array: Optional[np.ndarray], ctype):
    return None if array is None else array.ctypes.data_as(ctypes.POINTER(ctype))


def conv_s8(
    x: np.ndarray,
    filter: np.ndarray,
    bias: Optional[np.ndarray],
    multipliers: Sequence[int],
    shifts: Sequence[int],
    *,
    input_zero_point: int,
    output_zero_point: int,
    stride: Sequence[int],
    padding: Sequence[int],
    activation: Sequence[int],
    output_hw: Sequence[int],
) -> np.ndarray:
    """Runs narrow_conv_s8: x [1, H, W, C] int8, filter [O, kh, kw, C] int8, bias [O] int32 or None,
    TFLM's per-channel (multiplier, shift), leading padding (pad_h, pad_w), clamp (lo, hi)."""
    x = np.ascontiguousarray(x, np.int8)
    filter = np.ascontiguousarray(filter, np.int8)
    bias = None if bias is None else np.ascontiguousarray(bias, np.int32)
    mult = np.ascontiguousarray(multipliers, np.int32)
    shift = np.ascontiguousarray(shifts, np.int32)
    out = np.zeros((1, int(output_hw[0]), int(output_hw[1]), filter.shape[0]), np.int8)
    params = CParams(
        -int(input_zero_point),
        int(output_zero_point),
        int(stride[0]),
        int(stride[1]),
        int(padding[0]),
        int(padding[1]),
        int(activation[0]),
        int(activation[1]),
    )
    quant = CQuant(_ptr(mult, ctypes.c_int32), _ptr(shift, ctypes.c_int32))
    status = library().narrow_conv_s8(
        ctypes.byref(params),
        ctypes.byref(quant),
        ctypes.byref(_dims(x.shape)),
        _ptr(x, ctypes.c_int8),
        ctypes.byref(_dims(filter.shape)),
        _ptr(filter, ctypes.c_int8),
        _ptr(bias, ctypes.c_int32),
        ctypes.byref(_dims(out.shape)),
        _ptr(out, ctypes.c_int8),
    )
    if status != 0:
        raise NarrowConvError(status)
    return out
