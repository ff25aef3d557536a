"""What the firmware needs to know about a .tflite: its operators (and the
MicroMutableOpResolver method of each) and its input/output tensors."""

from __future__ import annotations

import dataclasses
import pathlib
import re
from typing import List, Optional, Tuple

import numpy as np

from ..core.errors import RNNPoolError

RNNPOOL_CODE = "RNNPool"

# schema TensorType -> (numpy dtype, TfLiteType value, C type)
TYPES = {0: (np.float32, 1, "float"), 2: (np.int32, 2, "int32_t"), 3: (np.uint8, 3, "uint8_t"),
          4: (np.int64, 4, "int64_t"), 6: (np.bool_, 6, "uint8_t"), 7: (np.int16, 7, "int16_t"),
          9: (np.int8, 9, "int8_t")}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    schema_type: int
    shape: Tuple[int, ...]
    scale: float
    zero_point: int

    @property
    def dtype(self):
        return TYPES[self.schema_type][0]

    @property
    def tflite_type(self) -> int:
        return TYPES[self.schema_type][1]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    ops: Tuple[str, ...]        # builtin names ("CONV_2D") or custom codes ("RNNPool"), first-use order
    inputs: Tuple[TensorInfo, ...]
    outputs: Tuple[TensorInfo, ...]
    operator_count: int
    custom_ops: Tuple[str, ...] = ()  # the custom codes among ops

    @property
    def has_rnnpool(self) -> bool:
        return RNNPOOL_CODE in self.custom_ops


def read_model_info(model: bytes) -> ModelInfo:
    """Operators and I/O tensors of a .tflite flatbuffer (main subgraph)."""
    from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

    if len(model) < 8 or model[4:8] != b"TFL3":
        raise RNNPoolError("not a TensorFlow Lite model (no 'TFL3' flatbuffer identifier)")
    try:
        root = schema.Model.GetRootAs(model, 0)
        if root.SubgraphsLength() < 1:
            raise RNNPoolError("the model has no subgraph")
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        codes, custom_codes = [], set()
        for i in range(root.OperatorCodesLength()):
            oc = root.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            if code == schema.BuiltinOperator.CUSTOM:
                custom = oc.CustomCode()
                codes.append(custom.decode("utf-8", "replace") if custom else "")
                custom_codes.add(codes[-1])
            else:
                codes.append(names.get(code, f"BUILTIN_{code}"))
        sub = root.Subgraphs(0)
        ops: List[str] = []
        for i in range(sub.OperatorsLength()):
            index = sub.Operators(i).OpcodeIndex()
            if not 0 <= index < len(codes):
                raise RNNPoolError(f"operator {i} uses opcode index {index}, the model has {len(codes)}")
            if codes[index] not in ops:
                ops.append(codes[index])

        def tensor(index: int) -> TensorInfo:
            if not 0 <= index < sub.TensorsLength():
                raise RNNPoolError(f"tensor index {index} is out of range")
            t = sub.Tensors(index)
            if t.Type() not in TYPES:
                raise RNNPoolError(f"tensor {t.Name().decode()!r} has a type (schema {t.Type()}) the firmware "
                                   "cannot feed or compare")
            q = t.Quantization()
            scale = float(q.Scale(0)) if q is not None and q.ScaleLength() > 0 else 0.0
            zp = int(q.ZeroPoint(0)) if q is not None and q.ZeroPointLength() > 0 else 0
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
            return TensorInfo(t.Name().decode("utf-8", "replace"), t.Type(), shape, scale, zp)

        inputs = tuple(tensor(sub.Inputs(i)) for i in range(sub.InputsLength()))
        outputs = tuple(tensor(sub.Outputs(i)) for i in range(sub.OutputsLength()))
        return ModelInfo(tuple(ops), inputs, outputs, sub.OperatorsLength(),
                         tuple(op for op in ops if op in custom_codes))
    except RNNPoolError:
        raise
    except Exception as exc:  # a truncated/corrupted flatbuffer fails somewhere in the reader
        raise RNNPoolError(f"the model flatbuffer is corrupted or truncated ({type(exc).__name__}: {exc})") from None


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
    from ..core.contract import inverted_residual_contract
    return (RNNPOOL_CODE, inverted_residual_contract().custom_code)


def check_ops_supported(info: ModelInfo, tflm_root: Optional[pathlib.Path]) -> None:
    known = firmware_custom_ops()
    for op in info.custom_ops:
        if op not in known:
            raise RNNPoolError(f"custom operator {op!r} is not supported by the firmware "
                               f"(only {', '.join(map(repr, known))})")
    if tflm_root is not None:
        known = set(supported_resolver_methods(tflm_root))
        for op in info.ops:
            if op not in info.custom_ops and resolver_method(op) not in known:
                raise RNNPoolError(f"operator {op} is not supported by TFLM (no MicroMutableOpResolver::"
                                   f"{resolver_method(op)})")
