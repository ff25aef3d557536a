"""A .tflite flatbuffer reduced to what TFLM's memory planning looks at.

A view over the one reader (rnnpool_tflm.tflite: parsed and validated there, types from
its table). Mirrors TFLM's own reading: a tensor is planned in the arena when its buffer
has data (GetFlatbufferTensorBuffer looks at `data` only), it is not a variable and its
byte size is not zero; a scalar (no shape) has one element.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Tuple

from ..core.errors import RNNPoolError
from ..tflite import model as tfm
from ..tflite import offline_plan
from ..tflite.tensor_types import type_info


@dataclasses.dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: Tuple[int, ...]
    dtype: int
    nbytes: int
    has_data: bool  # constant: its bytes live in the flatbuffer (flash)
    is_variable: bool
    quant_channels: int  # scales TFLM copies (0: no affine quantization)

    @property
    def type_name(self) -> str:
        info = type_info(self.dtype)
        return info.name if info is not None else f"type{self.dtype}"

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class Operator:
    index: int
    name: str  # builtin name, or the custom code for CUSTOM ops
    builtin_code: int
    inputs: Tuple[int, ...]  # -1: optional input left out
    outputs: Tuple[int, ...]
    intermediates: Tuple[int, ...]
    options: Dict[str, object]
    custom_options: Optional[bytes]

    @property
    def is_custom(self) -> bool:
        return self.builtin_code == tfm.BuiltinOperator.CUSTOM


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
    offline_offsets: Optional[Tuple[int, ...]] = None  # OfflineMemoryAllocation, per tensor (-1: online)

    @property
    def main(self) -> Subgraph:
        return self.subgraphs[0]

    def tensor(self, index: int) -> Optional[Tensor]:
        return self.main.tensors[index] if 0 <= index < len(self.main.tensors) else None


def _enum_names(cls) -> Dict[int, str]:
    return {value: name for name, value in vars(cls).items() if not name.startswith("_") and isinstance(value, int)}


# Builtin options the kernel models need, read as plain dicts (keys as the schema's getters).
_OPTION_FIELDS = {
    "Conv2DOptions": ("Padding", "StrideW", "StrideH", "DilationWFactor", "DilationHFactor"),
    "DepthwiseConv2DOptions": (
        "Padding",
        "StrideW",
        "StrideH",
        "DepthMultiplier",
        "DilationWFactor",
        "DilationHFactor",
    ),
    "Pool2DOptions": ("Padding", "StrideW", "StrideH", "FilterWidth", "FilterHeight"),
    "FullyConnectedOptions": ("KeepNumDims",),
    "ConcatenationOptions": ("Axis",),
    "ReducerOptions": ("KeepDims",),
}
_OPTION_KINDS = _enum_names(tfm.schema.BuiltinOptions)


def _read_options(op) -> Dict[str, object]:
    fields = _OPTION_FIELDS.get(_OPTION_KINDS.get(op.builtinOptionsType))
    if not fields or op.builtinOptions is None:
        return {}
    return {field: getattr(op.builtinOptions, field[0].lower() + field[1:]) for field in fields}


def _ints(values) -> Tuple[int, ...]:
    return () if values is None else tuple(int(v) for v in values)


def read_graph(model: bytes) -> Graph:
    """Parses a .tflite model (tflite.model.read_model: tflite.model.ModelError, an RNNPoolError,
    when it is not one, is damaged or breaks a rule); RNNPoolError for what TFLM cannot plan."""
    if not isinstance(model, (bytes, bytearray, memoryview)):
        raise RNNPoolError("the model must be bytes (the contents of a .tflite file)")
    model = bytes(model)
    parsed = tfm.read_model(model)
    subgraphs = []
    for sg in parsed.subgraphs:
        tensors = []
        for t, tensor in enumerate(sg.tensors or []):
            shape = _ints(tensor.shape)
            info = type_info(tensor.type)
            if info is None or info.size is None:
                raise RNNPoolError(f"tensor {t} has type {tfm.type_name(tensor.type)}, which TFLM cannot size")
            scales, zps, _ = tfm.quantization(tensor)
            channels = int(scales.size) if scales.size and zps.size else 0
            name = tfm._text(tensor.name)
            tensors.append(
                Tensor(
                    t,
                    name or f"t{t}",
                    shape,
                    int(tensor.type),
                    math.prod(shape) * info.size,
                    _has_bytes(parsed, tensor),
                    bool(tensor.isVariable),
                    channels,
                )
            )
        operators = []
        for o, op in enumerate(sg.operators or []):
            code = parsed.operatorCodes[op.opcodeIndex]
            raw = op.customOptions
            custom_options = bytes(bytearray(raw)) if raw is not None and len(raw) else None
            operators.append(
                Operator(
                    o,
                    tfm.opcode_name(parsed, op.opcodeIndex),
                    tfm.builtin_code(code),
                    _ints(op.inputs),
                    _ints(op.outputs),
                    _ints(op.intermediates),
                    _read_options(op),
                    custom_options,
                )
            )
        subgraphs.append(Subgraph(tuple(tensors), tuple(operators), _ints(sg.inputs), _ints(sg.outputs)))
    metadata = tuple(tfm._text(m.name) for m in parsed.metadata or [])
    offline = offline_plan.read_plan(parsed)  # TFLM rejects a plan that does not cover every tensor
    return Graph(tuple(subgraphs), metadata, len(model), tuple(offline) if offline is not None else None)


def _has_bytes(model, tensor) -> bool:
    """Whether the tensor's buffer holds data (any type: TFLM looks at the bytes only)."""
    data = model.buffers[tensor.buffer].data if model.buffers else None
    return data is not None and len(data) > 0


def tensor_list(subgraph: Subgraph, indices) -> List[Optional[Tensor]]:
    return [subgraph.tensors[i] if i >= 0 else None for i in indices]
