"""ctypes bindings to the C RNNPool kernel (custom_ops/rnnpool/rnnpool.h).

The kernel is built for the host at install time into
``rnnpool_tflm/_rnnpool_c*.so`` (a plain shared library, see setup.py).
Buffers are sized with the kernel's own size functions, which give the same
numbers on the host as on a 32-bit microcontroller (rnnpool.h).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import pathlib
from typing import Dict, Optional, Tuple

import numpy as np

from ..core.config import RNNPoolConfig
from ..core.contract import contract
from ..core.errors import RNNPoolError
from ..core.weights import RNNPoolWeights
from ..reference.quant_params import QuantizedRNNPool

_F32P = ctypes.POINTER(ctypes.c_float)
_I8P = ctypes.POINTER(ctypes.c_int8)
_I16P = ctypes.POINTER(ctypes.c_int16)
_I32P = ctypes.POINTER(ctypes.c_int32)

CONFIG_FIELDS = (
    "batch",
    "in_rows",
    "in_cols",
    "channels",
    "patch_rows",
    "patch_cols",
    "stride_rows",
    "stride_cols",
    "padding",
    "hidden1",
    "hidden2",
    "gate_activation",
    "update_activation",
    "output_pad_bottom",
    "output_pad_right",
    "rnn1_mode",
)
MULTIPLIER_KINDS = {"x1": 0, "u1": 1, "x2": 2, "u2": 3, "y": 4}  # rnnpool_multiplier_kind


class CConfig(ctypes.Structure):
    """rnnpool_config: any int32 values (the validator judges them)."""

    _fields_ = [(name, ctypes.c_int32) for name in CONFIG_FIELDS]


class CGeometry(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int32)
        for name in (
            "out_rows",
            "out_cols",
            "pad_top",
            "pad_bottom",
            "pad_left",
            "pad_right",
            "padded_out_rows",
            "padded_out_cols",
        )
    ]


class CS8Params(ctypes.Structure):
    """rnnpool_s8_params."""

    _fields_ = [
        ("input_scale", ctypes.c_float),
        ("input_zero_point", ctypes.c_int32),
        ("output_scale", ctypes.c_float),
        ("output_zero_point", ctypes.c_int32),
        ("w1", _I8P),
        ("w1_scale", _F32P),
        ("w1_scale_count", ctypes.c_int32),
        ("u1", _I8P),
        ("u1_scale", _F32P),
        ("u1_scale_count", ctypes.c_int32),
        ("bias1", _I32P),
        ("w2", _I8P),
        ("w2_scale", _F32P),
        ("w2_scale_count", ctypes.c_int32),
        ("u2", _I8P),
        ("u2_scale", _F32P),
        ("u2_scale_count", ctypes.c_int32),
        ("bias2", _I32P),
        ("scalars", _I16P),
    ]


class CF32Params(ctypes.Structure):
    """rnnpool_f32_params."""

    _fields_ = [(name, _F32P) for name in ("w1", "u1", "bias1", "w2", "u2", "bias2", "scalars")]


class KernelError(RNNPoolError):
    """A status other than RNNPOOL_OK from the C kernel; `.status` is the code, `.name` its enumerator."""

    def __init__(self, where: str, status: int):
        self.status = int(status)
        self.name = status_name(status)
        super().__init__(f"{where}: {status_text(status)} ({self.name})")


def library_path() -> pathlib.Path:
    here = pathlib.Path(__file__).resolve().parents[1]  # the extension sits at the package root
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"_rnnpool_c{suffix}"
        if candidate.is_file():
            return candidate
    raise RNNPoolError(
        f"the RNNPool C kernel is not built ({here}/_rnnpool_c*.so is missing); "
        "run `./dev setup` or `pip install -e .` to compile it"
    )


_SIGNATURES = {
    "rnnpool_validate_config": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(CGeometry)]),
    "rnnpool_status_str": (ctypes.c_char_p, [ctypes.c_int]),
    "rnnpool_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "rnnpool_s8_validate": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(CS8Params)]),
    "rnnpool_s8_prepared_bytes": (ctypes.c_size_t, [ctypes.POINTER(CConfig)]),
    "rnnpool_s8_scratch_bytes": (ctypes.c_size_t, [ctypes.POINTER(CConfig)]),
    "rnnpool_s8_prepare": (
        ctypes.c_int,
        [ctypes.POINTER(CConfig), ctypes.POINTER(CS8Params), ctypes.c_void_p, ctypes.c_size_t],
    ),
    "rnnpool_s8_eval": (ctypes.c_int, [ctypes.c_void_p, _I8P, _I8P, ctypes.c_void_p, ctypes.c_size_t]),
    "rnnpool_s8_state_formats": (ctypes.c_int, [ctypes.c_void_p, _I32P, _I32P]),
    "rnnpool_s8_multiplier": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_int32, _I32P, _I32P]),
    "rnnpool_s8_requant_forms": (ctypes.c_int, [ctypes.c_void_p, _I32P]),
    "rnnpool_s8_inplace_lag": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(ctypes.c_int64)]),
    "rnnpool_f32_inplace_lag": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(ctypes.c_int64)]),
    "rnnpool_f32_validate": (ctypes.c_int, [ctypes.POINTER(CConfig), ctypes.POINTER(CF32Params)]),
    "rnnpool_f32_prepared_bytes": (ctypes.c_size_t, [ctypes.POINTER(CConfig)]),
    "rnnpool_f32_scratch_bytes": (ctypes.c_size_t, [ctypes.POINTER(CConfig)]),
    "rnnpool_f32_prepare": (
        ctypes.c_int,
        [ctypes.POINTER(CConfig), ctypes.POINTER(CF32Params), ctypes.c_void_p, ctypes.c_size_t],
    ),
    "rnnpool_f32_eval": (ctypes.c_int, [ctypes.c_void_p, _F32P, _F32P, ctypes.c_void_p, ctypes.c_size_t]),
}


def bind(signatures: Dict[str, tuple]) -> ctypes.CDLL:
    """The host library (all the C kernels) with these functions' result and argument types
    declared: {name: (restype, [argtypes])}."""
    lib = ctypes.CDLL(str(library_path()))
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def status_enum(lib: ctypes.CDLL, prefix: str) -> Dict[str, int]:
    """A kernel's status enumerators {"<PREFIX>_OK": 0, ...}, read through `<prefix>_status_name`."""
    name_of, codes, code = getattr(lib, f"{prefix}_status_name"), {}, 0
    while (name := name_of(code)) is not None:
        codes[name.decode()] = code
        code += 1
    return codes


def status_enum_name(lib: ctypes.CDLL, prefix: str, status: int) -> str:
    name = getattr(lib, f"{prefix}_status_name")(int(status))
    return name.decode() if name is not None else f"unknown status {int(status)}"


def status_enum_text(lib: ctypes.CDLL, prefix: str, status: int) -> str:
    return getattr(lib, f"{prefix}_status_str")(int(status)).decode()


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    """The host build of the kernel, with the RNNPool functions' types declared."""
    return bind(_SIGNATURES)


# -- status codes ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def status_codes() -> Dict[str, int]:
    """{"RNNPOOL_OK": 0, "RNNPOOL_ERR_NULL_POINTER": 1, ...}, read from the library."""
    return status_enum(library(), "rnnpool")


def status_name(status: int) -> str:
    return status_enum_name(library(), "rnnpool", status)


def status_text(status: int) -> str:
    return status_enum_text(library(), "rnnpool", status)


def _check(where: str, status: int) -> None:
    if status != 0:
        raise KernelError(where, status)


# -- configuration ----------------------------------------------------------------------


def make_config(config: RNNPoolConfig, input_shape) -> CConfig:
    """The rnnpool_config of an RNNPool layer applied to an NHWC input of this shape."""
    if len(input_shape) != 4:
        raise ValueError(f"input must be NHWC (rank 4), got shape {tuple(input_shape)}")
    n, rows, cols, channels = (int(v) for v in input_shape)
    consts = contract().constants
    return CConfig(
        batch=n,
        in_rows=rows,
        in_cols=cols,
        channels=channels,
        patch_rows=config.patch_size[0],
        patch_cols=config.patch_size[1],
        stride_rows=config.strides[0],
        stride_cols=config.strides[1],
        padding=consts["RNNPOOL_PADDING_SAME" if config.padding == "same" else "RNNPOOL_PADDING_VALID"],
        hidden1=config.hidden_dims[0],
        hidden2=config.hidden_dims[1],
        gate_activation=consts["RNNPOOL_GATE_HARD_SIGMOID" if config.hard_gate else "RNNPOOL_GATE_SIGMOID"],
        update_activation=consts["RNNPOOL_UPDATE_HARD_TANH" if config.hard_update else "RNNPOOL_UPDATE_TANH"],
        output_pad_bottom=config.output_padding[0],
        output_pad_right=config.output_padding[1],
        rnn1_mode=consts["RNNPOOL_RNN1_RECOMPUTE" if config.rnn1_mode == "recompute" else "RNNPOOL_RNN1_CACHED"],
    )


def geometry(cfg: CConfig) -> CGeometry:
    geo = CGeometry()
    _check("rnnpool_validate_config", library().rnnpool_validate_config(ctypes.byref(cfg), ctypes.byref(geo)))
    return geo


def output_shape(cfg: CConfig) -> Tuple[int, int, int, int]:
    geo = geometry(cfg)
    return cfg.batch, geo.padded_out_rows, geo.padded_out_cols, 4 * cfg.hidden2


# -- parameters as C structs ---------------------------------------------------------------


class S8Params:
    """An rnnpool_s8_params and the arrays it points into (kept alive with it).

    Keyword overrides replace a field after it is built from `params` (tests use
    them for bad values, e.g. ``w1_scale_count=3`` or ``w1=None`` for NULL)."""

    def __init__(self, params: QuantizedRNNPool, **overrides):
        arrays = {
            "w1": np.ascontiguousarray(params.w1, np.int8),
            "w1_scale": _f32(params.w1_scale),
            "u1": np.ascontiguousarray(params.u1, np.int8),
            "u1_scale": _f32(params.u1_scale),
            "bias1": np.ascontiguousarray(params.bias1, np.int32),
            "w2": np.ascontiguousarray(params.w2, np.int8),
            "w2_scale": _f32(params.w2_scale),
            "u2": np.ascontiguousarray(params.u2, np.int8),
            "u2_scale": _f32(params.u2_scale),
            "bias2": np.ascontiguousarray(params.bias2, np.int32),
            "scalars": np.ascontiguousarray(np.asarray(params.scalars).reshape(-1), np.int16),
        }
        self._keep = arrays
        self.struct = CS8Params(
            input_scale=float(params.input_scale),
            input_zero_point=int(params.input_zero_point),
            output_scale=float(params.output_scale),
            output_zero_point=int(params.output_zero_point),
            w1_scale_count=arrays["w1_scale"].size,
            u1_scale_count=arrays["u1_scale"].size,
            w2_scale_count=arrays["w2_scale"].size,
            u2_scale_count=arrays["u2_scale"].size,
        )
        for name, array in arrays.items():
            setattr(self.struct, name, _pointer(array))
        for name, value in overrides.items():
            setattr(self.struct, name, _pointer(value) if isinstance(value, np.ndarray) else value)
            if isinstance(value, np.ndarray):
                self._keep[name] = value


class F32Params:
    """An rnnpool_f32_params built from float weights (Keras orientation), arrays kept alive."""

    def __init__(self, weights: RNNPoolWeights, **overrides):
        sig = lambda v: 1.0 / (1.0 + np.exp(-np.float64(v)))  # noqa: E731
        c1, c2 = weights.rnn1, weights.rnn2
        arrays = {
            "w1": _f32(np.asarray(c1.w).T),
            "u1": _f32(np.asarray(c1.u).T),
            "bias1": _f32(np.stack([c1.bias_gate, c1.bias_update])),
            "w2": _f32(np.asarray(c2.w).T),
            "u2": _f32(np.asarray(c2.u).T),
            "bias2": _f32(np.stack([c2.bias_gate, c2.bias_update])),
            "scalars": _f32([sig(c1.zeta), sig(c1.nu), sig(c2.zeta), sig(c2.nu)]),
        }
        arrays.update({k: _f32(v) for k, v in overrides.items() if v is not None})
        self._keep = arrays
        self.struct = CF32Params(**{name: _pointer(a) for name, a in arrays.items()})
        for name, value in overrides.items():
            if value is None:
                setattr(self.struct, name, None)


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _pointer(array: Optional[np.ndarray]):
    if array is None:
        return None
    ctype = {
        np.dtype(np.int8): _I8P,
        np.dtype(np.int16): _I16P,
        np.dtype(np.int32): _I32P,
        np.dtype(np.float32): _F32P,
    }[array.dtype]
    return array.ctypes.data_as(ctype)


# -- validation and sizes --------------------------------------------------------------------


def validate(cfg: CConfig, params=None, variant: str = "int8") -> int:
    """The kernel's status for cfg (and params, an S8Params/F32Params, when given): 0 = usable.

    Without params only the configuration is checked (rnnpool_validate_config)."""
    lib = library()
    if params is None:
        return int(lib.rnnpool_validate_config(ctypes.byref(cfg), None))
    fn = lib.rnnpool_s8_validate if variant == "int8" else lib.rnnpool_f32_validate
    return int(fn(ctypes.byref(cfg), ctypes.byref(params.struct)))


def buffer_bytes(cfg: CConfig, variant: str = "int8") -> Tuple[int, int]:
    """(prepared bytes, scratch bytes) the kernel needs; raises KernelError for an invalid cfg.

    The numbers are the same on the host and on a 32-bit target."""
    if variant not in ("int8", "float32"):
        raise ValueError(f"variant must be 'int8' or 'float32', got {variant!r}")
    lib, tag = library(), "s8" if variant == "int8" else "f32"
    prepared = getattr(lib, f"rnnpool_{tag}_prepared_bytes")(ctypes.byref(cfg))
    scratch = getattr(lib, f"rnnpool_{tag}_scratch_bytes")(ctypes.byref(cfg))
    if prepared == 0 or scratch == 0:
        status = validate(cfg)
        _check(f"rnnpool_{tag} buffer sizes", status or status_codes()["RNNPOOL_ERR_SIZE_OVERFLOW"])
    return int(prepared), int(scratch)


def inplace_lag(cfg: CConfig, variant: str = "int8") -> int:
    """The op's in-place lag in bytes (rnnpool.h, rnnpool_s8_inplace_lag): eval is correct with the
    output overlapping the input when input_start - output_start >= lag, or with no overlap at all.
    Negative: the output may start up to -lag bytes after the input. Raises KernelError for an invalid cfg."""
    if variant not in ("int8", "float32"):
        raise ValueError(f"variant must be 'int8' or 'float32', got {variant!r}")
    lag = ctypes.c_int64()
    fn = library().rnnpool_s8_inplace_lag if variant == "int8" else library().rnnpool_f32_inplace_lag
    _check(f"rnnpool_{'s8' if variant == 'int8' else 'f32'}_inplace_lag", fn(ctypes.byref(cfg), ctypes.byref(lag)))
    return int(lag.value)


def layer_inplace_lag(config: RNNPoolConfig, input_shape, variant: str = "int8") -> int:
    """inplace_lag of one RNNPool layer (its op options) on an NHWC input shape (memory planning)."""
    return inplace_lag(make_config(config, input_shape), variant)


def layer_buffer_bytes(config: RNNPoolConfig, input_shape, variant: str = "int8") -> Tuple[int, int]:
    """(prepared bytes, scratch bytes) of one RNNPool layer on an NHWC input shape (arena planning)."""
    return buffer_bytes(make_config(config, input_shape), variant)


def aligned_buffer(nbytes: int) -> np.ndarray:
    """A zeroed uint8 array whose data is 8-byte aligned (the kernel requires it)."""
    raw = np.zeros(int(nbytes) + 8, np.uint8)
    offset = (-raw.ctypes.data) % 8
    return raw[offset : offset + int(nbytes)]


# -- evaluation ------------------------------------------------------------------------------------


class PreparedS8:
    """An int8 RNNPool prepared once for a fixed input shape; call it on int8 NHWC maps."""

    def __init__(self, params: QuantizedRNNPool, input_shape):
        self.cfg = make_config(params.config, input_shape)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.prepared_bytes, self.scratch_bytes = buffer_bytes(self.cfg, "int8")
        self.prepared = aligned_buffer(self.prepared_bytes)
        self.scratch = aligned_buffer(self.scratch_bytes)
        c_params = S8Params(params)
        _check(
            "rnnpool_s8_prepare",
            library().rnnpool_s8_prepare(
                ctypes.byref(self.cfg), ctypes.byref(c_params.struct), self.prepared.ctypes.data, self.prepared.size
            ),
        )
        self.output_shape = output_shape(self.cfg)

    def state_formats(self) -> Tuple[int, int]:
        q1, q2 = ctypes.c_int32(), ctypes.c_int32()
        _check(
            "rnnpool_s8_state_formats",
            library().rnnpool_s8_state_formats(self.prepared.ctypes.data, ctypes.byref(q1), ctypes.byref(q2)),
        )
        return q1.value, q2.value

    def multiplier(self, kind: str, channel: int = 0) -> Tuple[int, int]:
        """(M, n) the kernel derived for 'x1', 'u1', 'x2', 'u2' (per channel) or 'y'."""
        mult, shift = ctypes.c_int32(), ctypes.c_int32()
        _check(
            "rnnpool_s8_multiplier",
            library().rnnpool_s8_multiplier(
                self.prepared.ctypes.data, MULTIPLIER_KINDS[kind], channel, ctypes.byref(mult), ctypes.byref(shift)
            ),
        )
        return mult.value, shift.value

    def requant_forms(self) -> Dict[str, int]:
        """How prepare applies each matrix's multipliers: 0 SMMUL form, 1 SMMULR form, 2 per row."""
        forms = (ctypes.c_int32 * 4)()
        _check(
            "rnnpool_s8_requant_forms",
            library().rnnpool_s8_requant_forms(self.prepared.ctypes.data, ctypes.cast(forms, _I32P)),
        )
        return dict(zip(("w1", "u1", "w2", "u2"), forms))

    def __call__(self, x_q: np.ndarray) -> np.ndarray:
        x_q = np.ascontiguousarray(x_q, dtype=np.int8)
        if x_q.shape != self.input_shape:
            raise ValueError(f"input shape {x_q.shape} differs from the prepared {self.input_shape}")
        out = np.empty(self.output_shape, np.int8)
        _check(
            "rnnpool_s8_eval",
            library().rnnpool_s8_eval(
                self.prepared.ctypes.data, _pointer(x_q), _pointer(out), self.scratch.ctypes.data, self.scratch.size
            ),
        )
        return out


class PreparedF32:
    """A float32 RNNPool prepared once for a fixed input shape."""

    def __init__(self, weights: RNNPoolWeights, config: RNNPoolConfig, input_shape):
        self.cfg = make_config(config, input_shape)
        self.input_shape = tuple(int(v) for v in input_shape)
        self.prepared_bytes, self.scratch_bytes = buffer_bytes(self.cfg, "float32")
        self.prepared = aligned_buffer(self.prepared_bytes)
        self.scratch = aligned_buffer(self.scratch_bytes)
        c_params = F32Params(weights)
        _check(
            "rnnpool_f32_prepare",
            library().rnnpool_f32_prepare(
                ctypes.byref(self.cfg), ctypes.byref(c_params.struct), self.prepared.ctypes.data, self.prepared.size
            ),
        )
        self.output_shape = output_shape(self.cfg)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise ValueError(f"input shape {x.shape} differs from the prepared {self.input_shape}")
        out = np.empty(self.output_shape, np.float32)
        _check(
            "rnnpool_f32_eval",
            library().rnnpool_f32_eval(
                self.prepared.ctypes.data, _pointer(x), _pointer(out), self.scratch.ctypes.data, self.scratch.size
            ),
        )
        return out


def rnnpool_s8(x_q: np.ndarray, params: QuantizedRNNPool) -> np.ndarray:
    """int8 NHWC map -> int8 [N, Ho + pad_b, Wo + pad_r, 4*h2] through the C kernel (bit-exact with the golden
    reference)."""
    return PreparedS8(params, np.shape(x_q))(x_q)


def rnnpool_f32(x: np.ndarray, weights: RNNPoolWeights, config: RNNPoolConfig) -> np.ndarray:
    """float32 NHWC map -> float32 [N, Ho, Wo, 4*h2] through the C kernel."""
    return PreparedF32(weights, config, np.shape(x))(x)
