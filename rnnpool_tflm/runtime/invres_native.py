"""ctypes bindings to the InvertedResidual C kernel (custom_ops/inverted_residual/inverted_residual.h).

The kernel is compiled into the same host library as the RNNPool kernel
(``rnnpool_tflm/_rnnpool_c*.so``, see setup.py). Buffers are sized with the
kernel's own size functions (the same numbers on the host and on the M4).

    kernel = PreparedInvertedResidual(params, x.shape)   # validate + prepare once
    y = kernel(x)                                        # int8 NHWC -> int8 NHWC
"""

from __future__ import annotations

import ctypes
import functools
from typing import Dict, Optional, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from ..reference.inverted_residual import QuantizedInvertedResidual
from . import native

_F32P = ctypes.POINTER(ctypes.c_float)
_I8P = ctypes.POINTER(ctypes.c_int8)
_I32P = ctypes.POINTER(ctypes.c_int32)

CONFIG_FIELDS = (
    "batch",
    "in_rows",
    "in_cols",
    "in_channels",
    "expanded_channels",
    "out_channels",
    "stride",
    "expand",
    "residual",
    "expand_activation",
    "depthwise_activation",
    "project_activation",
    "add_activation",
)
STAGES = {"expand": 0, "depthwise": 1, "project": 2}  # invres_stage
FORMS = {0: "smmlar", 1: "general", -1: "absent"}


class CConfig(ctypes.Structure):
    """invres_config: any int32 values (the validator judges them)."""

    _fields_ = [(name, ctypes.c_int32) for name in CONFIG_FIELDS]


class CGeometry(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int32) for name in ("out_rows", "out_cols", "pad_top", "pad_left")]


class CQuantization(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_float), ("zero_point", ctypes.c_int32)]


class CFilter(ctypes.Structure):
    _fields_ = [("weights", _I8P), ("bias", _I32P), ("scales", _F32P), ("scale_count", ctypes.c_int32)]


class CParams(ctypes.Structure):
    """invres_s8_params."""

    _fields_ = [(name, CQuantization) for name in ("input", "expanded", "depthwise", "projected", "output")] + [
        (name, CFilter) for name in ("expand", "depthwise_filter", "project")
    ]


class CConstants(ctypes.Structure):
    """invres_s8_constants."""

    _fields_ = [
        ("expand_weights", _I8P),
        ("expand_bias", _I32P),
        ("depthwise_weights", _I8P),
        ("depthwise_bias", _I32P),
        ("project_weights", _I8P),
        ("project_bias", _I32P),
    ]


class InvertedResidualKernelError(RNNPoolError):
    """A status other than INVRES_OK; `.status` is the code, `.name` its enumerator."""

    def __init__(self, where: str, status: int):
        self.status = int(status)
        self.name = status_name(status)
        super().__init__(f"{where}: {status_text(status)} ({self.name})")


_SIGNATURES = {
    "invres_validate_config": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(CGeometry)]),
    "invres_s8_validate": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(CParams)]),
    "invres_s8_prepared_bytes": (ctypes.c_size_t, [ctypes.POINTER(CConfig)]),
    "invres_s8_scratch_bytes": (ctypes.c_size_t, [ctypes.POINTER(CConfig)]),
    "invres_s8_prepare": (
        ctypes.c_int,
        [ctypes.POINTER(CConfig), ctypes.POINTER(CParams), ctypes.c_void_p, ctypes.c_size_t],
    ),
    "invres_s8_eval": (
        ctypes.c_int,
        [ctypes.c_void_p, ctypes.POINTER(CConstants), _I8P, _I8P, ctypes.c_void_p, ctypes.c_size_t],
    ),
    "invres_status_str": (ctypes.c_char_p, [ctypes.c_int]),
    "invres_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "invres_s8_multiplier": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int32, _I32P, _I32P]),
    "invres_s8_activation_range": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _I32P, _I32P]),
    "invres_s8_add_params": (ctypes.c_int, [ctypes.c_void_p, _I32P]),
    "invres_s8_requant_forms": (ctypes.c_int, [ctypes.c_void_p, _I32P]),
}


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    return native.bind(_SIGNATURES)


@functools.lru_cache(maxsize=1)
def status_codes() -> Dict[str, int]:
    """{"INVRES_OK": 0, ...}, read from the library."""
    return native.status_enum(library(), "invres")


def status_name(status: int) -> str:
    return native.status_enum_name(library(), "invres", status)


def status_text(status: int) -> str:
    return native.status_enum_text(library(), "invres", status)


def _check(where: str, status: int) -> None:
    if status != 0:
        raise InvertedResidualKernelError(where, status)


def make_config(p: QuantizedInvertedResidual, input_shape, **overrides) -> CConfig:
    if len(input_shape) != 4:
        raise ValueError(f"input must be NHWC (rank 4), got shape {tuple(input_shape)}")
    n, rows, cols, ci = (int(v) for v in input_shape)
    values = dict(
        batch=n,
        in_rows=rows,
        in_cols=cols,
        in_channels=ci,
        expanded_channels=p.expanded_channels,
        out_channels=p.out_channels,
        stride=p.stride,
        expand=int(p.expand is not None),
        residual=int(p.residual),
        expand_activation=p.expand.activation if p.expand is not None else 0,
        depthwise_activation=p.depthwise.activation,
        project_activation=p.project.activation,
        add_activation=p.add_activation,
    )
    values.update(overrides)
    return CConfig(**values)


def _pointer(array: Optional[np.ndarray], ctype):
    return None if array is None else array.ctypes.data_as(ctypes.POINTER(ctype))


class Params:
    """An invres_s8_params (and invres_s8_constants) over arrays this object keeps alive.
    `overrides` replace quantizations ("input": (scale, zp)) or filter fields
    ("expand_scales", "project_weights", ...) to build invalid parameters in tests."""

    def __init__(self, p: QuantizedInvertedResidual, **overrides):
        self.arrays = {}

        def keep(name: str, value, dtype):
            if name in overrides:
                value = overrides[name]
            if value is None:
                return None
            self.arrays[name] = np.ascontiguousarray(value, dtype=dtype)
            return self.arrays[name]

        def quant(name: str, q) -> CQuantization:
            scale, zp = overrides.get(name, (q.scale, q.zero_point) if q is not None else (1.0, 0))
            return CQuantization(float(np.float32(scale)), int(zp))

        def conv(name: str, stage, c_name: str) -> CFilter:
            if stage is None:
                return CFilter()
            w = keep(f"{name}_weights", np.asarray(stage.filter).reshape(-1), np.int8)
            b = keep(f"{name}_bias", stage.bias, np.int32)
            s = keep(f"{name}_scales", np.asarray(stage.scales).reshape(-1), np.float32)
            count = overrides.get(f"{name}_scale_count", 0 if s is None else s.size)
            return CFilter(
                _pointer(w, ctypes.c_int8), _pointer(b, ctypes.c_int32), _pointer(s, ctypes.c_float), int(count)
            )

        self.c = CParams(
            quant("input", p.input),
            quant("expanded", p.expanded),
            quant("depthwise", p.depthwise_output),
            quant("projected", p.projected),
            quant("output", p.output),
            conv("expand", p.expand, "expand"),
            conv("depthwise", p.depthwise, "depthwise_filter"),
            conv("project", p.project, "project"),
        )
        self.constants = CConstants(
            self.c.expand.weights,
            self.c.expand.bias,
            self.c.depthwise_filter.weights,
            self.c.depthwise_filter.bias,
            self.c.project.weights,
            self.c.project.bias,
        )


def validate(cfg: CConfig, params: Optional[Params] = None) -> int:
    lib = library()
    if params is None:
        return lib.invres_validate_config(ctypes.byref(cfg), None)
    return lib.invres_s8_validate(ctypes.byref(cfg), ctypes.byref(params.c))


def geometry(cfg: CConfig) -> CGeometry:
    geo = CGeometry()
    _check("InvertedResidual config", library().invres_validate_config(ctypes.byref(cfg), ctypes.byref(geo)))
    return geo


def buffer_bytes(cfg: CConfig) -> Tuple[int, int]:
    """(prepared, scratch) bytes; (0, 0) for an invalid config."""
    lib = library()
    return int(lib.invres_s8_prepared_bytes(ctypes.byref(cfg))), int(lib.invres_s8_scratch_bytes(ctypes.byref(cfg)))


class PreparedInvertedResidual:
    """The kernel prepared for one parameter set and input shape; calling it runs eval."""

    def __init__(self, p: QuantizedInvertedResidual, input_shape, **overrides):
        self.params = Params(p, **overrides)
        self.cfg = make_config(p, input_shape)
        self.input_shape = tuple(int(v) for v in input_shape)
        geo = geometry(self.cfg)
        self.output_shape = (self.input_shape[0], geo.out_rows, geo.out_cols, p.out_channels)
        self.prepared_bytes, self.scratch_bytes = buffer_bytes(self.cfg)
        self.prepared = native.aligned_buffer(self.prepared_bytes)
        self.scratch = native.aligned_buffer(self.scratch_bytes)
        _check(
            "InvertedResidual prepare",
            library().invres_s8_prepare(
                ctypes.byref(self.cfg), ctypes.byref(self.params.c), self.prepared.ctypes.data, self.prepared_bytes
            ),
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x)
        if x.dtype != np.int8 or x.shape != self.input_shape:
            raise RNNPoolError(f"input must be int8 {self.input_shape}, got {x.dtype} {x.shape}")
        y = np.empty(self.output_shape, np.int8)
        _check(
            "InvertedResidual eval",
            library().invres_s8_eval(
                self.prepared.ctypes.data,
                ctypes.byref(self.params.constants),
                _pointer(x, ctypes.c_int8),
                _pointer(y, ctypes.c_int8),
                self.scratch.ctypes.data,
                self.scratch_bytes,
            ),
        )
        return y

    def multiplier(self, stage: str, channel: int) -> Tuple[int, int]:
        m, n = ctypes.c_int32(), ctypes.c_int32()
        _check(
            "multiplier",
            library().invres_s8_multiplier(
                self.prepared.ctypes.data, STAGES[stage], channel, ctypes.byref(m), ctypes.byref(n)
            ),
        )
        return m.value, n.value

    def activation_range(self, stage: str) -> Tuple[int, int]:
        lo, hi = ctypes.c_int32(), ctypes.c_int32()
        _check(
            "activation range",
            library().invres_s8_activation_range(
                self.prepared.ctypes.data, STAGES[stage], ctypes.byref(lo), ctypes.byref(hi)
            ),
        )
        return lo.value, hi.value

    def add_params(self) -> Tuple[int, ...]:
        values = (ctypes.c_int32 * 8)()
        _check("add params", library().invres_s8_add_params(self.prepared.ctypes.data, values))
        return tuple(values)

    def requant_forms(self) -> Dict[str, str]:
        forms = (ctypes.c_int32 * 4)()
        _check("requant forms", library().invres_s8_requant_forms(self.prepared.ctypes.data, forms))
        return {name: FORMS[forms[i]] for i, name in enumerate(("expand", "depthwise", "project", "add"))}


def inverted_residual_s8(x: np.ndarray, p: QuantizedInvertedResidual) -> np.ndarray:
    """One-shot: prepare and run the C kernel."""
    return PreparedInvertedResidual(p, x.shape)(x)
