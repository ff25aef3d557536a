"""The one table of tensor types: the schema's TensorType, its name, numpy dtype,
TfLiteType value, C type and the byte size TFLM gives it (TfLiteTypeSizeOf).

Every module that maps a .tflite tensor type to something else reads it here, so the
mapping exists once (no raw type numbers elsewhere).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import numpy as np
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

TensorType = schema.TensorType


@dataclasses.dataclass(frozen=True)
class TypeInfo:
    schema: int  # schema TensorType value (what a .tflite stores)
    name: str  # "int8", "float32", ...
    schema_name: str  # "INT8", "FLOAT32", ... (the schema's spelling, used in messages)
    tflite: int  # TfLiteType value (c/common.h: what the C API and firmware see)
    numpy: Optional[type]  # None: no numpy equivalent the toolkit uses
    c_type: Optional[str]  # the C element type the firmware feeds/compares; None: not supported there
    size: Optional[int]  # bytes per element in TFLM's arena (INT4 takes one); None: TFLM cannot size it


# (schema name, TfLiteType, numpy dtype, C type, TFLM element size). TfLiteType numbers from
# tensorflow/lite/core/c/c_api_types.h; sizes from micro/memory_helpers.cc TfLiteTypeSizeOf.
_ROWS = (
    ("FLOAT32", 1, np.float32, "float", 4),
    ("FLOAT16", 10, np.float16, None, 2),
    ("INT32", 2, np.int32, "int32_t", 4),
    ("UINT8", 3, np.uint8, "uint8_t", 1),
    ("INT64", 4, np.int64, "int64_t", 8),
    ("STRING", 5, None, None, None),
    ("BOOL", 6, np.bool_, "uint8_t", 1),
    ("INT16", 7, np.int16, "int16_t", 2),
    ("COMPLEX64", 8, np.complex64, None, 8),
    ("INT8", 9, np.int8, "int8_t", 1),
    ("FLOAT64", 11, np.float64, None, 8),
    ("COMPLEX128", 12, np.complex128, None, 16),
    ("UINT64", 13, np.uint64, None, 8),
    ("RESOURCE", 14, None, None, 4),
    ("VARIANT", 15, None, None, None),
    ("UINT32", 16, np.uint32, None, 4),
    ("UINT16", 17, np.uint16, None, 2),
    ("INT4", 18, None, None, 1),
    ("BFLOAT16", 19, None, None, 2),
)

TYPES: Dict[int, TypeInfo] = {
    getattr(TensorType, name): TypeInfo(getattr(TensorType, name), name.lower(), name, tflite, dtype, c_type, size)
    for name, tflite, dtype, c_type, size in _ROWS
    if hasattr(TensorType, name)
}


def type_info(tensor_type: int) -> Optional[TypeInfo]:
    return TYPES.get(int(tensor_type))


def type_name(tensor_type: int) -> str:
    """The schema's name ("INT8"), or "type N" for a number the schema does not define."""
    info = TYPES.get(int(tensor_type))
    return info.schema_name if info is not None else f"type {tensor_type}"


def schema_type(name: str) -> int:
    """The schema TensorType of a contract type name ("INT8", "FLOAT32", ...)."""
    for info in TYPES.values():
        if info.schema_name == name:
            return info.schema
    raise KeyError(f"no tensor type named {name!r}")


def numpy_dtype(tensor_type: int) -> Optional[type]:
    info = TYPES.get(int(tensor_type))
    return info.numpy if info is not None else None


# schema TensorType -> numpy dtype, for the types that have one.
NUMPY_TYPES: Dict[int, type] = {k: v.numpy for k, v in TYPES.items() if v.numpy is not None}
