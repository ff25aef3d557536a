"""What every .tflite must satisfy before anything uses it (read_model runs both checks).

* check_structure: every index in range, constant data of the size its tensor needs, and a
  graph TFLM can run: operators present, each tensor written by at most one operator,
  operators in execution order (a tensor is written before it is read).
* check_quantization: every tensor's quantization is one TFLM and our kernels can use:
  scales positive, normal and within [2^SCALE_MIN_LOG2, 2^SCALE_MAX_LOG2], 1 or one per
  channel of the quantized dimension, zero points (1 or one per scale) within the tensor
  type's range, 0 for int32/int64 (biases and fixed-point data).

Both raise ModelError with one line naming the model, the tensor or operator and the
problem; tflite-micro itself aborts the process on several of these (NaN or huge
scales in its QuantizeMultiplier checks), so they must never reach it.
"""

from __future__ import annotations

import math
from typing import Dict, List

import numpy as np
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from ..core.errors import RNNPoolError
from .tensor_types import NUMPY_TYPES, TensorType, type_name

# A scale outside [2^-64, 2^64] is no real model's (an int8 range of 2^-56 .. 2^72);
# the bounds keep every product and ratio of two scales a normal float32/double.
SCALE_MIN_LOG2 = -64
SCALE_MAX_LOG2 = 64

# Zero-point range per tensor type; int32/int64 (biases, Q-format data) must be 0.
_ZERO_POINT_RANGE = {
    TensorType.INT8: (-128, 127),
    TensorType.UINT8: (0, 255),
    TensorType.INT16: (-32768, 32767),
    TensorType.INT32: (0, 0),
    TensorType.INT64: (0, 0),
}
if hasattr(TensorType, "INT4"):
    _ZERO_POINT_RANGE[TensorType.INT4] = (-8, 7)


class ModelError(RNNPoolError):
    """A .tflite that cannot be read or breaks a rule; the message names what and where."""


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _ints(values) -> List[int]:
    return [] if values is None else [int(v) for v in values]


def tensor_label(subgraph: schema.SubGraphT, index: int) -> str:
    name = _text(subgraph.tensors[index].name)
    return f"#{index} {name!r}" if name else f"#{index}"


def _has_data(model: schema.ModelT, tensor: schema.TensorT) -> bool:
    buffers = model.buffers or []
    data = buffers[tensor.buffer].data if 0 <= tensor.buffer < len(buffers) else None
    return data is not None and len(data) > 0


def check_structure(model: schema.ModelT, name: str = "model") -> None:
    """Every index in range, constant data of the right size, a graph TFLM can execute."""

    def fail(msg):
        raise ModelError(f"{name}: corrupted model: {msg}")

    if not model.subgraphs:
        fail("no subgraphs")
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    for s_idx, sg in enumerate(model.subgraphs):
        tensors = sg.tensors or []
        for t_idx, t in enumerate(tensors):
            if t.buffer < 0 or t.buffer >= max(len(buffers), 1):
                fail(f"subgraph {s_idx} tensor {t_idx} refers to buffer {t.buffer} of {len(buffers)}")
            shape = _ints(t.shape)
            if any(d < 0 for d in shape):
                fail(f"subgraph {s_idx} tensor {t_idx} has a negative dimension {shape}")
            data = buffers[t.buffer].data if buffers else None
            if data is not None and len(data) and t.type in NUMPY_TYPES:
                need = int(np.prod(shape, dtype=np.int64)) * np.dtype(NUMPY_TYPES[t.type]).itemsize
                if len(data) != need:
                    fail(
                        f"tensor {tensor_label(sg, t_idx)} has {len(data)} bytes of data, its shape "
                        f"{shape} and type {type_name(t.type)} need {need}"
                    )
        for kind in ("inputs", "outputs"):
            for t_idx in _ints(getattr(sg, kind)):
                if not 0 <= t_idx < len(tensors):
                    fail(f"subgraph {s_idx} {kind[:-1]} tensor index {t_idx} out of range ({len(tensors)})")
        for o_idx, op in enumerate(sg.operators or []):
            if not 0 <= op.opcodeIndex < len(codes):
                fail(f"operator {o_idx} uses operator code {op.opcodeIndex} of {len(codes)}")
            for t_idx in _ints(op.inputs) + _ints(op.outputs) + _ints(op.intermediates):
                if not -1 <= t_idx < len(tensors):
                    fail(f"operator {o_idx} ({_op_name(model, op)}) uses tensor {t_idx} of {len(tensors)}")
        _check_graph(model, s_idx, fail)


def _op_name(model: schema.ModelT, op: schema.OperatorT) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return _text(code.customCode) or "CUSTOM"
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(builtin, f"BUILTIN_{builtin}")


def _check_graph(model: schema.ModelT, s_idx: int, fail) -> None:
    """Operators present, one writer per tensor, every tensor written before it is read."""
    sg = model.subgraphs[s_idx]
    ops = sg.operators or []
    if not ops:
        fail(f"subgraph {s_idx} has no operators")
    if not _ints(sg.outputs):
        fail(f"subgraph {s_idx} has no outputs")
    graph_inputs = set(_ints(sg.inputs))
    producer: Dict[int, int] = {}
    for o_idx, op in enumerate(ops):
        for t in _ints(op.outputs):
            if t < 0:
                continue
            if t in graph_inputs:
                fail(f"operator {o_idx} ({_op_name(model, op)}) writes graph input tensor {tensor_label(sg, t)}")
            if t in producer:
                fail(f"tensor {tensor_label(sg, t)} is written by two operators ({producer[t]} and {o_idx})")
            if _has_data(model, sg.tensors[t]):
                fail(f"operator {o_idx} ({_op_name(model, op)}) writes constant tensor {tensor_label(sg, t)}")
            producer[t] = o_idx

    def available(t: int, before: int) -> bool:
        tensor = sg.tensors[t]
        return (
            t in graph_inputs or _has_data(model, tensor) or bool(tensor.isVariable) or producer.get(t, before) < before
        )

    for o_idx, op in enumerate(ops):
        for t in _ints(op.inputs):
            if t >= 0 and not available(t, o_idx):
                if t in producer:
                    fail(
                        f"operators out of order: operator {o_idx} ({_op_name(model, op)}) reads tensor "
                        f"{tensor_label(sg, t)} before operator {producer[t]} writes it"
                    )
                fail(
                    f"operator {o_idx} ({_op_name(model, op)}) reads tensor {tensor_label(sg, t)}, which no "
                    "operator writes and which is neither a graph input nor constant"
                )
    for t in _ints(sg.outputs):
        if not available(t, len(ops)):
            fail(f"graph output tensor {tensor_label(sg, t)} is written by no operator")


def check_quantization(model: schema.ModelT, name: str = "model") -> None:
    """Every quantized tensor's scales and zero points usable (module docstring)."""
    for s_idx, sg in enumerate(model.subgraphs or []):
        for t_idx, t in enumerate(sg.tensors or []):
            problem = quantization_problem(t)
            if problem:
                where = f"subgraph {s_idx} " if s_idx else ""
                raise ModelError(f"{name}: {where}tensor {tensor_label(sg, t_idx)}: {problem}")


def quantization_problem(t: schema.TensorT) -> str:
    """What is wrong with one tensor's quantization ("" when nothing, or it has none)."""
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return ""
    scales = np.asarray(q.scale, np.float64)
    zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
    shape = _ints(t.shape)
    dim = int(q.quantizedDimension)
    if scales.size > 1:
        if not 0 <= dim < len(shape):
            return f"{scales.size} scales along dimension {dim} of a rank-{len(shape)} tensor"
        if scales.size != shape[dim]:
            return f"{scales.size} scales, but dimension {dim} has {shape[dim]} channels"
    if zps.size == 0:
        return f"{scales.size} scale(s) but no zero point (TFLM would drop the quantization)"
    if zps.size not in (1, scales.size):
        return f"{zps.size} zero points for {scales.size} scales (need 1 or one per scale)"
    lo, hi = 2.0**SCALE_MIN_LOG2, 2.0**SCALE_MAX_LOG2
    for s in scales:
        if not math.isfinite(s) or s <= 0:
            return f"scale {float(s):g} is not positive and finite"
        if not lo <= s <= hi:
            denormal = " (a denormal)" if s < np.finfo(np.float32).tiny else ""
            return f"scale {float(s):g} is outside [2^{SCALE_MIN_LOG2}, 2^{SCALE_MAX_LOG2}]{denormal}"
    limits = _ZERO_POINT_RANGE.get(t.type)
    if limits is not None and (zps.min() < limits[0] or zps.max() > limits[1]):
        bad = int(zps[(zps < limits[0]) | (zps > limits[1])][0])
        return f"zero point {bad} is outside [{limits[0]}, {limits[1]}] for a {type_name(t.type)} tensor"
    return ""
