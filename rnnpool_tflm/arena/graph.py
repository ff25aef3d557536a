"""A .tflite flatbuffer reduced to what TFLM's memory planning looks at.

Reads with the schema module shipped in the tflite-micro wheel (no TensorFlow import).
Mirrors TFLM's own reading: a tensor is planned in the arena when its buffer has no
data (GetFlatbufferTensorBuffer looks at `data` only), it is not a variable and its
byte size is not zero; a scalar (no shape) has one element.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Tuple

from ..core.errors import RNNPoolError

# TfLiteTypeSizeOf() (micro/memory_helpers.cc), keyed by the schema's TensorType.
# INT4 counts one byte per element there; STRING/VARIANT have no size in TFLM.
_TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: 4, 15: 4, 16: 2,
               17: 1, 18: 2}
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
              8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource",
              14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16"}


@dataclasses.dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: Tuple[int, ...]
    dtype: int
    nbytes: int
    has_data: bool           # constant: its bytes live in the flatbuffer (flash)
    is_variable: bool
    quant_channels: int      # scales TFLM copies (0: no affine quantization)

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.dtype, f"type{self.dtype}")

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class Operator:
    index: int
    name: str                # builtin name, or the custom code for CUSTOM ops
    builtin_code: int
    inputs: Tuple[int, ...]  # -1: optional input left out
    outputs: Tuple[int, ...]
    intermediates: Tuple[int, ...]
    options: Dict[str, object]
    custom_options: Optional[bytes]

    @property
    def is_custom(self) -> bool:
        return self.builtin_code == 32


@dataclasses.dataclass(frozen=True)
class Subgraph:
    tensors: Tuple[Tensor, ...]
    operators: Tuple[Operator, ...]
    inputs: Tuple[int, ...]
    outputs: Tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Graph:
    subgraphs: Tuple[Subgraph, ...]
    metadata_names: Tuple[str, ...]
    model_bytes: int

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def tensor(self, index: int) -> Optional[Tensor]:
        return self.main.tensors[index] if 0 <= index < len(self.main.tensors) else None


def _schema():
    from tflite_micro.tensorflow.lite.python import schema_py_generated
    return schema_py_generated


def _enum_names(cls) -> Dict[int, str]:
    return {value: name for name, value in vars(cls).items() if not name.startswith("_") and isinstance(value, int)}


# Builtin options the kernel models need, read as plain dicts.
_OPTION_FIELDS = {
    "Conv2DOptions": ("Padding", "StrideW", "StrideH", "DilationWFactor", "DilationHFactor"),
    "DepthwiseConv2DOptions": ("Padding", "StrideW", "StrideH", "DepthMultiplier", "DilationWFactor",
                               "DilationHFactor"),
    "Pool2DOptions": ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight"),
    "FullyConnectedOptions": ("KeepNumDims",),
    "ConcatenationOptions": ("Axis",),
    "ReducerOptions": ("KeepDims",),
}


def _read_options(schema, op) -> Dict[str, object]:
    kind = op.BuiltinOptionsType()
    names = _enum_names(schema.BuiltinOptions)
    name = names.get(kind)
    fields = _OPTION_FIELDS.get(name)
    table = op.BuiltinOptions()
    if not fields or table is None:
        return {}
    obj = getattr(schema, name)()
    obj.Init(table.Bytes, table.Pos)
    return {field: getattr(obj, field)() for field in fields}


def _array(getter_length, getter) -> Tuple[int, ...]:
    return tuple(int(getter(i)) for i in range(getter_length()))


def read_graph(model: bytes) -> Graph:
    """Parses a .tflite model; RNNPoolError when it is not one or is damaged."""
    if not isinstance(model, (bytes, bytearray, memoryview)):
        raise RNNPoolError("the model must be bytes (the contents of a .tflite file)")
    model = bytes(model)
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise RNNPoolError("not a TFLite model (no TFL3 identifier)")
    schema = _schema()
    try:
        return _read(schema, model)
    except RNNPoolError:
        raise
    except Exception as exc:  # flatbuffers raises assorted errors on damaged input
        raise RNNPoolError(f"damaged TFLite flatbuffer: {type(exc).__name__}: {exc}") from None


def _read(schema, model: bytes) -> Graph:
    root = schema.Model.GetRootAs(model, 0)
    op_names = _enum_names(schema.BuiltinOperator)
    buffers = [root.Buffers(i) for i in range(root.BuffersLength())]
    codes = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        custom = code.CustomCode()
        codes.append((builtin, custom.decode("utf-8", "replace") if custom else None))
    subgraphs = []
    for s in range(root.SubgraphsLength()):
        sg = root.Subgraphs(s)
        tensors = []
        for t in range(sg.TensorsLength()):
            tensor = sg.Tensors(t)
            shape = () if tensor.ShapeIsNone() else tuple(int(v) for v in tensor.ShapeAsNumpy())
            dtype = int(tensor.Type())
            if dtype not in _TYPE_SIZES:
                raise RNNPoolError(f"tensor {t} has type {TYPE_NAMES.get(dtype, dtype)}, which TFLM cannot size")
            if any(d < 0 for d in shape):
                raise RNNPoolError(f"tensor {t} has a dynamic shape {list(shape)}; TFLM needs static shapes")
            buffer_index = int(tensor.Buffer())
            if not 0 <= buffer_index < len(buffers):
                raise RNNPoolError(f"tensor {t} refers to buffer {buffer_index} of {len(buffers)}")
            buffer = buffers[buffer_index]
            has_data = buffer is not None and buffer.DataLength() > 0
            quant = tensor.Quantization()
            channels = 0
            if quant is not None and quant.ScaleLength() > 0 and quant.ZeroPointLength() > 0:
                channels = int(quant.ScaleLength())
            name = tensor.Name()
            tensors.append(Tensor(t, name.decode("utf-8", "replace") if name else f"t{t}", shape, dtype,
                                  math.prod(shape) * _TYPE_SIZES[dtype], has_data, bool(tensor.IsVariable()),
                                  channels))
        operators = []
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            index = int(op.OpcodeIndex())
            if not 0 <= index < len(codes):
                raise RNNPoolError(f"operator {o} refers to opcode {index} of {len(codes)}")
            builtin, custom = codes[index]
            inputs = _array(op.InputsLength, op.Inputs)
            outputs = _array(op.OutputsLength, op.Outputs)
            intermediates = _array(op.IntermediatesLength, op.Intermediates)
            for ref in inputs + outputs + intermediates:
                if ref >= len(tensors) or ref < -1:
                    raise RNNPoolError(f"operator {o} refers to tensor {ref} of {len(tensors)}")
            custom_options = bytes(op.CustomOptionsAsNumpy().tobytes()) if op.CustomOptionsLength() else None
            name = custom if builtin == 32 and custom else op_names.get(builtin, f"BUILTIN_{builtin}")
            operators.append(Operator(o, name, builtin, inputs, outputs, intermediates, _read_options(schema, op),
                                      custom_options))
        subgraphs.append(Subgraph(tuple(tensors), tuple(operators), _array(sg.InputsLength, sg.Inputs),
                                  _array(sg.OutputsLength, sg.Outputs)))
    if not subgraphs:
        raise RNNPoolError("the model has no subgraph")
    metadata = []
    for i in range(root.MetadataLength()):
        name = root.Metadata(i).Name()
        metadata.append(name.decode("utf-8", "replace") if name else "")
    return Graph(tuple(subgraphs), tuple(metadata), len(model))


def tensor_list(subgraph: Subgraph, indices) -> List[Optional[Tensor]]:
    return [subgraph.tensors[i] if i >= 0 else None for i in indices]
