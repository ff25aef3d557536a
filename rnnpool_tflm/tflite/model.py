"""Reading, checking, editing and writing .tflite flatbuffers, and the RNNPool op in them.

The one reader of the toolkit (docs/models.md): models are handled with the TFLite
schema's object API (``ModelT``) from the tflite-micro package, and read_model validates
everything a model supplies before anyone uses it (tflite/checks.py: not a .tflite file,
a truncated or corrupted flatbuffer, a broken graph, an unusable quantization), with
errors that name the problem. validate_model checks the custom ops against their
contracts (custom_ops/*/..._op_contract.h, parsed by core/contract.py). write_model
keeps the schema's 16-byte alignment of buffer data.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import flatbuffers
import numpy as np
from flatbuffers import flexbuffers
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from ..core.config import RNNPoolConfig
from ..core.contract import contract
from ..reference.quant_params import Q12_ONE, Q14_ONE, SAT25_MAX, SAT25_MIN, QuantizedRNNPool
from .checks import ModelError, _text, check_quantization, check_structure, tensor_label  # noqa: F401 (re-exported)
from .options import read_options_map
from .tensor_types import NUMPY_TYPES, schema_type, type_name

FILE_IDENTIFIER = b"TFL3"
TensorType = schema.TensorType
BuiltinOperator = schema.BuiltinOperator

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


# -- reading and writing -----------------------------------------------------------------------


def load_bytes(source) -> bytes:
    """bytes as they are, or the contents of a file path (clear errors for missing files)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    path = os.fspath(source)
    if not os.path.exists(path):
        raise ModelError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ModelError(f"{path}: is a directory, not a .tflite file")
    with open(path, "rb") as handle:
        return handle.read()


def read_model(source, name: str = "model") -> schema.ModelT:
    """Parses a .tflite flatbuffer (bytes or path) and checks its structure."""
    if not isinstance(source, (bytes, bytearray, memoryview)):
        name = os.fspath(source)
    data = load_bytes(source)
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        found = data[4:8] if len(data) >= 8 else b""
        raise ModelError(
            f"{name}: not a .tflite model (the flatbuffer file identifier is {found!r}, expected {FILE_IDENTIFIER!r})"
        )
    root = int.from_bytes(data[:4], "little")
    if root < 8 or root + 4 > len(data):
        raise ModelError(
            f"{name}: truncated or corrupted flatbuffer (root table offset {root} outside the {len(data)}-byte file)"
        )
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:  # the generated reader raises whatever indexing fails first
        raise ModelError(f"{name}: truncated or corrupted flatbuffer ({type(exc).__name__}: {exc})") from None
    check_structure(model, name)
    check_quantization(model, name)
    return model


# The schema's `force_align: 16` on Buffer.data (TFLM reads weights in place, SIMD kernels
# and int64/double data need it); the Python object API ignores force_align.
BUFFER_ALIGNMENT = 16


class _AlignedBuffer(schema.BufferT):
    """A BufferT that packs its data vector at BUFFER_ALIGNMENT."""

    def __init__(self, source: schema.BufferT):
        super().__init__()
        self.data, self.offset, self.size = source.data, source.offset, source.size

    def Pack(self, builder):
        data = None
        if self.data is not None:
            payload = np.ascontiguousarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(payload), BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        schema.BufferAddOffset(builder, self.offset)
        schema.BufferAddSize(builder, self.size)
        return schema.BufferEnd(builder)


def write_model(model: schema.ModelT) -> bytes:
    """The model as a .tflite flatbuffer, every buffer's data 16-byte aligned in the file."""
    buffers = model.buffers
    model.buffers = [_AlignedBuffer(b) for b in buffers or []] if buffers is not None else None
    try:
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    finally:
        model.buffers = buffers
    return bytes(builder.Output())


# -- names and small accessors ------------------------------------------------------------------


def builtin_code(code: schema.OperatorCodeT) -> int:
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def opcode_name(model: schema.ModelT, opcode_index: int) -> str:
    code = model.operatorCodes[opcode_index]
    if builtin_code(code) == BuiltinOperator.CUSTOM:
        return _text(code.customCode) or "CUSTOM"
    return _OP_NAMES.get(builtin_code(code), f"BUILTIN_{builtin_code(code)}")


def tensor_shape(tensor: schema.TensorT) -> Tuple[int, ...]:
    return tuple(int(d) for d in (tensor.shape if tensor.shape is not None else []))


def constant_data(model: schema.ModelT, tensor: schema.TensorT) -> Optional[np.ndarray]:
    """The tensor's constant values (reshaped), or None for a non-constant tensor."""
    data = model.buffers[tensor.buffer].data if model.buffers else None
    if data is None or len(data) == 0:
        return None
    dtype = NUMPY_TYPES.get(tensor.type)
    if dtype is None:
        return None
    return np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype=dtype).reshape(tensor_shape(tensor))


def quantization(tensor: schema.TensorT) -> Tuple[np.ndarray, np.ndarray, int]:
    """(scales float32, zero points int64, quantized dimension); empty arrays when absent."""
    q = tensor.quantization
    if q is None or q.scale is None:
        return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
    zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
    return np.asarray(q.scale, np.float32), zps, int(q.quantizedDimension)


def per_tensor(tensor: schema.TensorT, what: str) -> Tuple[np.float32, int]:
    scales, zps, _ = quantization(tensor)
    if scales.size != 1 or zps.size != 1:
        raise ModelError(
            f"{what} must be quantized per tensor (one scale and zero point), got "
            f"{scales.size} scales and {zps.size} zero points"
        )
    if not (math.isfinite(float(scales[0])) and scales[0] > 0):
        raise ModelError(f"{what} has an invalid scale {float(scales[0])!r}")
    return np.float32(scales[0]), int(zps[0])


# -- building blocks for editing ------------------------------------------------------------------


def add_buffer(model: schema.ModelT, array: Optional[np.ndarray] = None) -> int:
    buf = schema.BufferT()
    if array is not None:
        buf.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
    model.buffers.append(buf)
    return len(model.buffers) - 1


def add_tensor(
    model: schema.ModelT,
    subgraph: schema.SubGraphT,
    name: str,
    tensor_type: int,
    shape,
    data: Optional[np.ndarray] = None,
    scale=None,
    zero_point=None,
    quantized_dimension: int = 0,
) -> int:
    t = schema.TensorT()
    t.name = name
    t.type = tensor_type
    t.shape = list(int(d) for d in shape)
    t.buffer = add_buffer(model, data) if data is not None else 0
    if scale is not None:
        q = schema.QuantizationParametersT()
        q.scale = [float(s) for s in np.atleast_1d(scale)]
        q.zeroPoint = [int(z) for z in np.atleast_1d(zero_point if zero_point is not None else 0)]
        q.quantizedDimension = quantized_dimension
        t.quantization = q
    subgraph.tensors.append(t)
    return len(subgraph.tensors) - 1


def opcode_index(model: schema.ModelT, builtin: int, custom_code: Optional[str] = None, version: int = 1) -> int:
    """The index of an operator code, added when the model does not have it yet."""
    for idx, code in enumerate(model.operatorCodes):
        if builtin_code(code) == builtin and (
            builtin != BuiltinOperator.CUSTOM or _text(code.customCode) == custom_code
        ):
            code.version = max(code.version, version)
            return idx
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.customCode = custom_code
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


# -- the RNNPool op: options --------------------------------------------------------------------


def encode_options(config: RNNPoolConfig) -> bytes:
    """The op's flexbuffer map (keys and value ranges from the contract; optional keys
    that equal their default are left out, so the model loads where they are unknown)."""
    c = contract()
    consts = c.constants
    options = {
        "version": c.version,
        "patch_rows": config.patch_size[0],
        "patch_cols": config.patch_size[1],
        "stride_rows": config.strides[0],
        "stride_cols": config.strides[1],
        "padding": consts["RNNPOOL_PADDING_SAME" if config.padding == "same" else "RNNPOOL_PADDING_VALID"],
        "gate_activation": consts["RNNPOOL_GATE_HARD_SIGMOID" if config.hard_gate else "RNNPOOL_GATE_SIGMOID"],
        "update_activation": consts["RNNPOOL_UPDATE_HARD_TANH" if config.hard_update else "RNNPOOL_UPDATE_TANH"],
        "output_pad_bottom": config.output_padding[0],
        "output_pad_right": config.output_padding[1],
        "rnn1_mode": consts["RNNPOOL_RNN1_RECOMPUTE" if config.rnn1_mode == "recompute" else "RNNPOOL_RNN1_CACHED"],
    }
    c.check_options(options)
    return bytes(flexbuffers.Dumps(c.without_defaults(options)))


def decode_options(raw) -> Dict[str, int]:
    """The RNNPool options map, checked against the contract (ModelError otherwise),
    omitted optional keys filled in with their defaults."""
    options = read_options_map(raw, contract().custom_code)
    try:
        contract().check_options(options)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    return contract().with_defaults(options)


def write_options(op: schema.OperatorT, options: Dict[str, int]) -> None:
    """Stores an RNNPool op's options (checked against the contract, defaults left out)."""
    c = contract()
    try:
        c.check_options(options)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    op.customOptions = np.frombuffer(bytes(flexbuffers.Dumps(c.without_defaults(options))), np.uint8)
    op.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS


def set_rnn1_mode(tflite: bytes, mode: str, op_indices: Optional[Sequence[int]] = None) -> bytes:
    """The model with the rnn1_mode option of its RNNPool ops (all, or those at these operator
    indices of subgraph 0) set to "cached" or "recompute" (same outputs, other scratch size).
    An offline memory plan is dropped: the mode changes the op's in-place lag, so an overlap
    planned for one mode may be unsafe in the other (plan again: convert.memory_plan)."""
    from ..core.config import RNN1_MODES

    if mode not in RNN1_MODES:
        raise ModelError(f"rnn1_mode must be one of {RNN1_MODES}, got {mode!r}")
    m = read_model(tflite)
    value = contract().constants["RNNPOOL_RNN1_RECOMPUTE" if mode == "recompute" else "RNNPOOL_RNN1_CACHED"]
    ops = m.subgraphs[0].operators or []
    chosen = range(len(ops)) if op_indices is None else op_indices
    for index in chosen:
        if not 0 <= index < len(ops) or not is_rnnpool(m, ops[index]):
            if op_indices is None:
                continue
            raise ModelError(f"operator {index} is not an RNNPool op")
        write_options(ops[index], {**decode_options(ops[index].customOptions), "rnn1_mode": value})
    from .offline_plan import set_plan

    set_plan(m, None)
    return write_model(m)


def options_config(options: Dict[str, int], hidden: Tuple[int, int]) -> RNNPoolConfig:
    consts = contract().constants
    return RNNPoolConfig.create(
        (options["patch_rows"], options["patch_cols"]),
        (options["stride_rows"], options["stride_cols"]),
        hidden,
        "same" if options["padding"] == consts["RNNPOOL_PADDING_SAME"] else "valid",
        "hard_sigmoid" if options["gate_activation"] == consts["RNNPOOL_GATE_HARD_SIGMOID"] else "sigmoid",
        "hard_tanh" if options["update_activation"] == consts["RNNPOOL_UPDATE_HARD_TANH"] else "tanh",
        (options["output_pad_bottom"], options["output_pad_right"]),
        "recompute" if options["rnn1_mode"] == consts["RNNPOOL_RNN1_RECOMPUTE"] else "cached",
    )


# -- the RNNPool op: validation and decoding --------------------------------------------------------


@dataclasses.dataclass
class RNNPoolNode:
    """One RNNPool operator of a model, decoded and validated."""

    subgraph: int
    op_index: int
    input_tensor: int
    output_tensor: int
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    options: Dict[str, int]
    params: QuantizedRNNPool
    name: str


def is_rnnpool(model: schema.ModelT, op: schema.OperatorT) -> bool:
    code = model.operatorCodes[op.opcodeIndex]
    return builtin_code(code) == BuiltinOperator.CUSTOM and _text(code.customCode) == contract().custom_code


def _expected_shapes(k: int, h1: int, h2: int) -> Dict[str, Tuple[int, ...]]:
    return {
        "w1": (h1, k),
        "u1": (h1, h1),
        "bias1": (2, h1),
        "w2": (h2, h1),
        "u2": (h2, h2),
        "bias2": (2, h2),
        "fastgrnn_scalars": (2, 2),
    }


def decode_rnnpool(model: schema.ModelT, subgraph_index: int, op_index: int) -> RNNPoolNode:
    """Checks one RNNPool op against the contract and returns its parameters.

    Raises ModelError naming the op and what is wrong."""
    c = contract()
    sg = model.subgraphs[subgraph_index]
    op = sg.operators[op_index]
    where = f"RNNPool op #{op_index}"

    def fail(msg):
        raise ModelError(f"{where}: {msg}")

    inputs = list(op.inputs if op.inputs is not None else [])
    outputs = list(op.outputs if op.outputs is not None else [])
    if len(inputs) != len(c.inputs) or len(outputs) != len(c.outputs):
        fail(
            f"has {len(inputs)} inputs and {len(outputs)} outputs; the contract needs "
            f"{len(c.inputs)} ({', '.join(s.name for s in c.inputs)}) and {len(c.outputs)}"
        )
    if any(i < 0 for i in inputs + outputs):
        fail("has an omitted (-1) input or output; every contract tensor is required")
    code = model.operatorCodes[op.opcodeIndex]
    if code.version != c.version:
        fail(f"operator code version {code.version}; this toolkit implements version {c.version}")
    if op.customOptionsFormat != schema.CustomOptionsFormat.FLEXBUFFERS:
        fail(f"custom options format {op.customOptionsFormat} is not FLEXBUFFERS")
    try:
        options = decode_options(op.customOptions)
    except ModelError as exc:
        fail(str(exc))

    tensors = {spec.name: sg.tensors[idx] for spec, idx in zip(c.inputs, inputs)}
    out = sg.tensors[outputs[0]]
    where = f"RNNPool op #{op_index} ({_text(out.name) or 'output ' + str(outputs[0])})"
    variant = "int8" if tensors["input"].type == TensorType.INT8 else "float32"
    if variant != "int8":
        fail(f"input type {type_name(tensors['input'].type)}: only the int8 op is supported here")
    for spec, idx in zip(c.inputs + c.outputs, inputs + outputs):
        tensor = sg.tensors[idx]
        want = schema_type(spec.int8_type)
        if tensor.type != want:
            fail(f"{spec.name} is {type_name(tensor.type)}, the contract says {spec.int8_type}")

    in_shape, out_shape = tensor_shape(tensors["input"]), tensor_shape(out)
    if len(in_shape) != 4 or min(in_shape, default=0) <= 0:
        fail(f"input shape {list(in_shape)} is not a non-empty NHWC shape")
    n, rows, cols, k = in_shape
    w1_shape = tensor_shape(tensors["w1"])
    w2_shape = tensor_shape(tensors["w2"])
    if len(w1_shape) != 2 or len(w2_shape) != 2:
        fail(f"w1 {list(w1_shape)} and w2 {list(w2_shape)} must be 2-D")
    h1, h2 = w1_shape[0], w2_shape[0]
    consts = c.constants
    if not (1 <= h1 <= consts["RNNPOOL_MAX_HIDDEN"] and 1 <= h2 <= consts["RNNPOOL_MAX_HIDDEN"]):
        fail(f"hidden sizes ({h1}, {h2}) outside [1, {consts['RNNPOOL_MAX_HIDDEN']}]")
    if not 1 <= k <= consts["RNNPOOL_MAX_CHANNELS"]:
        fail(f"{k} input channels outside [1, {consts['RNNPOOL_MAX_CHANNELS']}]")
    for name, shape in _expected_shapes(k, h1, h2).items():
        if tensor_shape(tensors[name]) != shape:
            fail(
                f"{name} has shape {list(tensor_shape(tensors[name]))}, expected {list(shape)} "
                f"(input channels k={k}, h1={h1}, h2={h2})"
            )
    try:
        config = options_config(options, (h1, h2))
        want_out = config.output_shape(in_shape)
    except ValueError as exc:
        fail(f"options inconsistent with the input shape {list(in_shape)}: {exc}")
    if out_shape != want_out:
        fail(
            f"output shape {list(out_shape)} does not match the options and input shape "
            f"(patch {config.patch_size}, stride {config.strides}, padding {config.padding!r}, "
            f"output padding {config.output_padding}, hidden {h1},{h2} on {list(in_shape)} give {list(want_out)})"
        )

    values = {}
    for name in _expected_shapes(k, h1, h2):
        data = constant_data(model, tensors[name])
        if data is None:
            fail(f"{name} is not a constant tensor (weights must be stored in the model)")
        values[name] = data

    # Each tensor's quantization by the kind the contract gives it (RNNPOOL_QUANTIZATION).
    quantized = {}
    for spec in c.inputs + c.outputs:
        tensor = out if spec in c.outputs else tensors[spec.name]
        quantized[spec.name] = _check_quantization(tensor, c.quantization[spec.name], f"{where} {spec.name}")
    (s_x, zp_x), (s_y, zp_y) = quantized["input"], quantized["output"]
    for name in ("w1", "u1", "w2", "u2"):
        if values[name].min() < -127:
            fail(f"{name} holds -128; symmetric weights are in [-127, 127]")
    for name in ("bias1", "bias2"):
        if values[name].min() < SAT25_MIN or values[name].max() > SAT25_MAX:
            fail(f"{name} outside the 25-bit Q12 range [{SAT25_MIN}, {SAT25_MAX}]")
    scalars = values["fastgrnn_scalars"]
    if scalars.min() < 0 or scalars.max() > Q14_ONE:
        fail(f"fastgrnn_scalars {scalars.tolist()} outside [0, {Q14_ONE}] (Q14 sigmoids)")

    params = QuantizedRNNPool(
        config,
        s_x,
        zp_x,
        s_y,
        zp_y,
        values["w1"],
        quantized["w1"],
        values["u1"],
        quantized["u1"],
        values["bias1"],
        values["w2"],
        quantized["w2"],
        values["u2"],
        quantized["u2"],
        values["bias2"],
        scalars.astype(np.int16),
    )
    return RNNPoolNode(
        subgraph_index, op_index, inputs[0], outputs[0], in_shape, out_shape, options, params, _text(out.name)
    )


def _check_quantization(tensor, kind: str, what: str):
    """The tensor's quantization checked as `kind` (core.contract.QUANTIZATION_KINDS):
    (scale, zero point) for PER_TENSOR, the scales for SYMMETRIC_ROWS, None for FIXED_POINT."""
    if kind == "PER_TENSOR":
        return _per_tensor_io(tensor, what)
    if kind == "SYMMETRIC_ROWS":
        return _weight_scales(tensor, what)
    if kind == "FIXED_POINT":  # a fixed Q format: nothing may shift it
        if np.any(quantization(tensor)[1] != 0):
            raise ModelError(f"{what} has a nonzero zero point; its fixed-point format needs 0")
        return None
    raise ModelError(f"{what}: the contract's quantization kind {kind!r} is unknown to this toolkit")


def _per_tensor_io(tensor, what: str):
    scale, zp = per_tensor(tensor, what)
    if not -128 <= zp <= 127:
        raise ModelError(f"{what} zero point {zp} is outside [-128, 127]")
    return scale, zp


def _weight_scales(tensor, what: str) -> np.ndarray:
    scales, zps, dim = quantization(tensor)
    rows = tensor_shape(tensor)[0]
    if scales.size not in (1, rows):
        raise ModelError(f"{what} has {scales.size} scales; expected 1 or one per output row ({rows})")
    if scales.size > 1 and dim != 0:
        raise ModelError(
            f"{what} is quantized along dimension {dim}; the contract's layout is [out, in], "
            "per output channel = dimension 0"
        )
    if zps.size not in (1, scales.size):
        raise ModelError(f"{what} has {zps.size} zero points for {scales.size} scales (need 1 or one per scale)")
    if np.any(zps != 0):
        raise ModelError(f"{what} must be symmetric (zero points 0), got {zps.tolist()}")
    if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
        raise ModelError(f"{what} has a non-positive or non-finite scale")
    return scales.astype(np.float32)


# -- whole-model validation and summary --------------------------------------------------------------


def validate_model(model: schema.ModelT, name: str = "model") -> List[RNNPoolNode]:
    """Every custom op known, every RNNPool and InvertedResidual op valid; returns the RNNPool nodes."""
    nodes = []
    for s_idx, sg in enumerate(model.subgraphs):
        for o_idx, op in enumerate(sg.operators or []):
            code = model.operatorCodes[op.opcodeIndex]
            if builtin_code(code) != BuiltinOperator.CUSTOM:
                continue
            from . import inverted_residual_op  # imports this module

            if inverted_residual_op.is_inverted_residual(model, op):
                try:
                    inverted_residual_op.decode(model, s_idx, o_idx)
                except ModelError as exc:
                    raise ModelError(f"{name}: {exc}") from None
                continue
            if not is_rnnpool(model, op):
                raise ModelError(
                    f"{name}: unknown custom operator {_text(code.customCode)!r} (op #{o_idx}); "
                    f"this toolkit knows only {contract().custom_code!r}"
                )
            try:
                nodes.append(decode_rnnpool(model, s_idx, o_idx))
            except ModelError as exc:
                raise ModelError(f"{name}: {exc}") from None
    return nodes


@dataclasses.dataclass
class ModelSummary:
    ops: Dict[str, int]
    parameters: int  # elements of constant tensors
    parameter_bytes: int
    model_bytes: int
    rnnpool_ops: int
    inputs: List[Tuple[str, Tuple[int, ...], str]]
    outputs: List[Tuple[str, Tuple[int, ...], str]]

    def format(self) -> str:
        ops = ", ".join(f"{name} x{count}" for name, count in sorted(self.ops.items()))
        io = lambda items: ", ".join(f"{n} {list(s)} {t}" for n, s, t in items)  # noqa: E731
        return (
            f"operators: {sum(self.ops.values())} ({ops})\n"
            f"parameters: {self.parameters:,} ({self.parameter_bytes:,} bytes)\n"
            f"model bytes: {self.model_bytes:,}\n"
            f"inputs: {io(self.inputs)}\noutputs: {io(self.outputs)}"
        )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def summarize(model: schema.ModelT, model_bytes: int) -> ModelSummary:
    sg = model.subgraphs[0]
    ops = collections.Counter(opcode_name(model, op.opcodeIndex) for op in sg.operators or [])
    params = nbytes = 0
    for t in sg.tensors:
        data = constant_data(model, t)
        if data is not None:
            params += data.size
            nbytes += data.nbytes
    io = lambda idx: [
        (_text(sg.tensors[i].name), tensor_shape(sg.tensors[i]), type_name(sg.tensors[i].type))  # noqa: E731
        for i in idx
    ]
    return ModelSummary(
        dict(ops),
        int(params),
        int(nbytes),
        int(model_bytes),
        ops.get(contract().custom_code, 0),
        io(sg.inputs),
        io(sg.outputs),
    )


def io_quantization(model: schema.ModelT, kind: str) -> List[Tuple[int, Tuple[int, ...], Optional[Tuple[float, int]]]]:
    """[(type, shape, (scale, zero point) or None)] of the first subgraph's inputs or outputs."""
    sg = model.subgraphs[0]
    result = []
    for idx in getattr(sg, kind):
        t = sg.tensors[idx]
        scales, zps, _ = quantization(t)
        q = (float(scales[0]), int(zps[0])) if scales.size == 1 and zps.size == 1 else None
        result.append((t.type, tensor_shape(t), q))
    return result


def topological_order(subgraph: schema.SubGraphT) -> List[int]:
    """Operator indices ordered so that every tensor is produced before it is read
    (stable: keeps the given order where it already works). Raises on a cycle."""
    ops = subgraph.operators or []
    producer = {}
    for o_idx, op in enumerate(ops):
        for t in op.outputs if op.outputs is not None else []:
            producer[int(t)] = o_idx
    deps = [
        {producer[int(t)] for t in (op.inputs if op.inputs is not None else []) if int(t) in producer} for op in ops
    ]
    done, order = set(), []
    while len(order) < len(ops):
        ready = [i for i in range(len(ops)) if i not in done and deps[i] <= done]
        if not ready:
            raise ModelError("the operators form a cycle")
        done.add(ready[0])
        order.append(ready[0])
    return order


def remove_unused(model: schema.ModelT) -> None:
    """Drops tensors no operator or graph I/O uses, and buffers no tensor uses (buffer 0 stays)."""
    for sg in model.subgraphs:
        used = set(sg.inputs) | set(sg.outputs)
        for op in sg.operators or []:
            used |= {int(t) for t in (op.inputs if op.inputs is not None else []) if t >= 0}
            used |= {int(t) for t in (op.outputs if op.outputs is not None else []) if t >= 0}
            used |= {int(t) for t in (op.intermediates if op.intermediates is not None else [])}
        keep = sorted(used)
        remap = {old: new for new, old in enumerate(keep)}
        sg.tensors = [sg.tensors[i] for i in keep]
        sg.inputs = [remap[i] for i in sg.inputs]
        sg.outputs = [remap[i] for i in sg.outputs]
        for op in sg.operators or []:
            op.inputs = [remap[int(t)] if t >= 0 else -1 for t in (op.inputs if op.inputs is not None else [])]
            op.outputs = [remap[int(t)] if t >= 0 else -1 for t in (op.outputs if op.outputs is not None else [])]
            if op.intermediates is not None:
                op.intermediates = [remap[int(t)] for t in op.intermediates]
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == model.subgraphs.index(sg):
                for m in list(sig.inputs or []) + list(sig.outputs or []):
                    m.tensorIndex = remap[m.tensorIndex]
    used_buffers = {0} | {t.buffer for sg in model.subgraphs for t in sg.tensors}
    used_buffers |= {m.buffer for m in model.metadata or []}
    keep = sorted(used_buffers)
    remap = {old: new for new, old in enumerate(keep)}
    model.buffers = [model.buffers[i] for i in keep]
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.buffer = remap[t.buffer]
    for m in model.metadata or []:
        m.buffer = remap[m.buffer]


def weight_tensor_arrays(params: QuantizedRNNPool) -> Sequence[Tuple[str, int, np.ndarray, Optional[np.ndarray]]]:
    """(contract input name, tensor type, data, scales or None) of the op's constant inputs,
    in the contract's order after `input`."""
    return [
        ("w1", TensorType.INT8, np.asarray(params.w1, np.int8), params.w1_scale),
        ("u1", TensorType.INT8, np.asarray(params.u1, np.int8), params.u1_scale),
        ("bias1", TensorType.INT32, np.asarray(params.bias1, np.int32), np.float32([1.0 / Q12_ONE])),
        ("w2", TensorType.INT8, np.asarray(params.w2, np.int8), params.w2_scale),
        ("u2", TensorType.INT8, np.asarray(params.u2, np.int8), params.u2_scale),
        ("bias2", TensorType.INT32, np.asarray(params.bias2, np.int32), np.float32([1.0 / Q12_ONE])),
        ("fastgrnn_scalars", TensorType.INT16, np.asarray(params.scalars, np.int16), np.float32([1.0 / Q14_ONE])),
    ]
