"""What the firmware needs to know about a .tflite: its operators (and the
MicroMutableOpResolver method of each) and its input/output tensors."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import List, Optional, Tuple

import numpy as np

from ..core.contract import contract, inverted_residual_contract
from ..core.errors import RNNPoolError
from . import model as tfm
from .tensor_types import TYPES, type_info

# The RNNPool op's custom code, as its contract header spells it.
RNNPOOL_CODE = contract().custom_code


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    schema_type: int
    shape: Tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def dtype(self):
        return TYPES[self.schema_type].numpy

    @property
    def tflite_type(self) -> int:
        return TYPES[self.schema_type].tflite

    @property
    def c_type(self) -> str:
        return TYPES[self.schema_type].c_type

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    ops: Tuple[str, ...]  # builtin names ("CONV_2D") or custom codes ("RNNPool"), first-use order
    inputs: Tuple[TensorInfo, ...]
    outputs: Tuple[TensorInfo, ...]
    operator_count: int
    custom_ops: Tuple[str, ...] = ()  # the custom codes among ops

    @property
    def has_rnnpool(self) -> bool:
        return RNNPOOL_CODE in self.custom_ops


def read_model_info(model: bytes, name: str = "model") -> ModelInfo:
    """Operators and I/O tensors of a .tflite flatbuffer (main subgraph), read and validated
    by the one reader (tflite.model.read_model: structure, graph order, quantization);
    `name` (the file) starts its error messages."""
    parsed = tfm.read_model(bytes(model), name)
    sub = parsed.subgraphs[0]
    ops: List[str] = []
    custom: List[str] = []
    for op in sub.operators:
        name = tfm.opcode_name(parsed, op.opcodeIndex)
        if name not in ops:
            ops.append(name)
            if tfm.builtin_code(parsed.operatorCodes[op.opcodeIndex]) == tfm.BuiltinOperator.CUSTOM:
                custom.append(name)

    def tensor(index: int) -> TensorInfo:
        t = sub.tensors[index]
        info = type_info(t.type)
        if info is None or info.c_type is None:
            raise RNNPoolError(
                f"tensor {tfm.tensor_label(sub, index)} has a type ({tfm.type_name(t.type)}) the "
                "firmware cannot feed or compare"
            )
        scales, zps, _ = tfm.quantization(t)
        return TensorInfo(
            tfm._text(t.name),
            int(t.type),
            tfm.tensor_shape(t),
            float(scales[0]) if scales.size else 0.0,
            int(zps[0]) if zps.size else 0,
        )

    return ModelInfo(
        tuple(ops),
        tuple(tensor(int(i)) for i in sub.inputs),
        tuple(tensor(int(i)) for i in sub.outputs),
        len(sub.operators),
        tuple(custom),
    )


# ---- operator registration ---------------------------------------------------------------------

# Where TFLM's generator gets the method name wrong (checked against the header by
# tests/test_firmware_export.py).
_METHOD_EXCEPTIONS = {"CUMSUM": "AddCumSum", "PADV2": "AddPadV2"}


def resolver_method(op: str) -> str:
    """MicroMutableOpResolver method for a builtin op name, as TFLM's own generator
    (generate_micro_mutable_op_resolver_from_model.py, ParseString) derives it."""
    if op in _METHOD_EXCEPTIONS:
        return _METHOD_EXCEPTIONS[op]
    word = op.replace("TFLite", "")
    out = ""
    for part in re.split("_|-", word):
        if len(part) > 1 and part[0].isalpha():
            out += part[0].upper() + part[1:].lower()
        else:
            out += part.upper()
    return "Add" + out.replace("Lstm", "LSTM").replace("BatchMatmul", "BatchMatMul")


def supported_resolver_methods(tflm_root: pathlib.Path) -> List[str]:
    header = tflm_root / "tensorflow/lite/micro/micro_mutable_op_resolver.h"
    return re.findall(r"TfLiteStatus (Add\w+)\(", header.read_text())


def firmware_custom_ops() -> Tuple[str, ...]:
    """The custom codes the firmware registers (deploy/sources.py has their registrations)."""
    return (RNNPOOL_CODE, inverted_residual_contract().custom_code)


def check_ops_supported(info: ModelInfo, tflm_root: Optional[pathlib.Path]) -> None:
    known = firmware_custom_ops()
    for op in info.custom_ops:
        if op not in known:
            raise RNNPoolError(
                f"custom operator {op!r} is not supported by the firmware (only {', '.join(map(repr, known))})"
            )
    if tflm_root is not None:
        known = set(supported_resolver_methods(tflm_root))
        for op in info.ops:
            if op not in info.custom_ops and resolver_method(op) not in known:
                raise RNNPoolError(
                    f"operator {op} is not supported by TFLM (no MicroMutableOpResolver::{resolver_method(op)})"
                )
