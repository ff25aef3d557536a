"""The one tensor-type table (rnnpool_tflm.tflite.tensor_types) against TFLM's own
definitions: the TfLiteType enum and TfLiteTypeSizeOf (memory_helpers.cc)."""

import os
import pathlib
import re

import numpy as np
import pytest

from rnnpool_tflm.tflite.tensor_types import TYPES, TensorType, schema_type, type_name

TFLM = pathlib.Path(os.environ.get("TFLM_DIR", "")) if os.environ.get("TFLM_DIR") else None
needs_tflm = pytest.mark.skipif(TFLM is None, reason="needs TFLM sources (set TFLM_DIR)")
C_SIZES = {
    "int8_t": 1,
    "uint8_t": 1,
    "bool": 1,
    "int16_t": 2,
    "uint16_t": 2,
    "int32_t": 4,
    "uint32_t": 4,
    "float": 4,
    "int64_t": 8,
    "uint64_t": 8,
    "double": 8,
}


def test_every_schema_type_is_in_the_table_with_its_own_number():
    schema_types = {v for k, v in vars(TensorType).items() if not k.startswith("_")}
    assert set(TYPES) <= schema_types
    for number, info in TYPES.items():
        assert getattr(TensorType, info.schema_name) == number == info.schema
        assert schema_type(info.schema_name) == number and type_name(number) == info.schema_name
    assert type_name(99) == "type 99"


def test_numpy_itemsizes_agree_with_the_arena_sizes():
    for info in TYPES.values():
        if info.numpy is not None:
            assert np.dtype(info.numpy).itemsize == info.size, info


@pytest.mark.tflm
@needs_tflm
def test_tflite_type_numbers_match_tflms_enum():
    text = (TFLM / "tensorflow/compiler/mlir/lite/core/c/tflite_types.h").read_text()
    enum = {name.lower(): int(value) for name, value in re.findall(r"kTfLite(\w+) = (\d+),", text)}
    for info in TYPES.values():
        assert enum[info.name] == info.tflite, info


@pytest.mark.tflm
@needs_tflm
def test_arena_sizes_match_tflms_type_size_of():
    text = (TFLM / "tensorflow/lite/micro/memory_helpers.cc").read_text()
    body = text[text.index("TfLiteStatus TfLiteTypeSizeOf(") :]
    body = body[: body.index("default:")]
    sizes = {
        name.lower(): C_SIZES[c_type] * (2 if twice else 1)
        for name, c_type, twice in re.findall(r"case kTfLite(\w+):\s*\*size = sizeof\((\w+)\)( \* 2)?;", body)
    }
    assert len(sizes) >= 15
    for info in TYPES.values():
        assert sizes.get(info.name) == info.size, info
