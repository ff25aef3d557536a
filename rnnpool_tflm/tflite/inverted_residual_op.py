"""The InvertedResidual custom op in a .tflite model: options, decoding + validation, and
rewriting an unfused block (CONV_2D 1x1 -> DEPTHWISE_CONV_2D 3x3 -> CONV_2D 1x1 [-> ADD])
into the op.

The contract (inputs, options, limits) is custom_ops/inverted_residual/
inverted_residual_op_contract.h, parsed by core.contract; docs/inverted_residual.md
describes it. `decode` checks an op as strictly as the TFLM registration's Prepare does
(inverted_residual_tflm.cc), so a model this module accepts is one the board accepts.

The intermediate activations' quantizations travel as constant INT8 [1] "carrier"
tensors (inputs *_quantization): their float32 scale and zero point are the unfused
graph's, bit for bit, read by TFLM exactly as its own kernels read them, and being
constant they get no arena space.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from flatbuffers import flexbuffers
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from ..core.contract import inverted_residual_contract
from ..core.errors import RNNPoolError
from ..reference.inverted_residual import ConvStage, Quantization, QuantizedInvertedResidual, derive, geometry
from . import model as tfm
from .options import read_options_map
from .tensor_types import schema_type

TensorType = schema.TensorType
BuiltinOperator = schema.BuiltinOperator
_MAX_ELEMENTS = (1 << 31) // 4  # every tensor's float32 size fits int32 (as the C core requires)


def _consts() -> Dict[str, int]:
    return dict(inverted_residual_contract().constants)


def encode_options(p: QuantizedInvertedResidual) -> bytes:
    """The op's flexbuffer map for these parameters (checked against the contract)."""
    c = inverted_residual_contract()
    options = {
        "version": c.version,
        "stride": int(p.stride),
        "expand": int(p.expand is not None),
        "residual": int(p.residual),
        "expand_activation": int(p.expand.activation) if p.expand is not None else 0,
        "depthwise_activation": int(p.depthwise.activation),
        "project_activation": int(p.project.activation),
        "add_activation": int(p.add_activation),
    }
    c.check_options(options)
    return bytes(flexbuffers.Dumps(options))


def decode_options(raw) -> Dict[str, int]:
    """The options map, checked against the contract (ModelError otherwise)."""
    options = read_options_map(raw, inverted_residual_contract().custom_code)
    try:
        inverted_residual_contract().check_options(options)
    except ValueError as exc:
        raise tfm.ModelError(str(exc)) from None
    return options


def is_inverted_residual(model: schema.ModelT, op: schema.OperatorT) -> bool:
    code = model.operatorCodes[op.opcodeIndex]
    return (
        tfm.builtin_code(code) == BuiltinOperator.CUSTOM
        and tfm._text(code.customCode) == inverted_residual_contract().custom_code
    )


@dataclasses.dataclass
class InvertedResidualNode:
    """One InvertedResidual operator of a model, decoded and validated."""

    subgraph: int
    op_index: int
    input_tensor: int
    output_tensor: int
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    options: Dict[str, int]
    params: QuantizedInvertedResidual
    name: str


def decode(model: schema.ModelT, subgraph_index: int, op_index: int) -> InvertedResidualNode:
    """Checks one InvertedResidual op against the contract and returns its parameters."""
    c = inverted_residual_contract()
    sg = model.subgraphs[subgraph_index]
    op = sg.operators[op_index]
    where = f"InvertedResidual op #{op_index}"

    def fail(msg: str):
        raise tfm.ModelError(f"{where}: {msg}")

    inputs = [int(t) for t in (op.inputs if op.inputs is not None else [])]
    outputs = [int(t) for t in (op.outputs if op.outputs is not None else [])]
    if len(inputs) != len(c.inputs) or len(outputs) != len(c.outputs):
        fail(f"needs {len(c.inputs)} inputs and {len(c.outputs)} output, has {len(inputs)} and {len(outputs)}")
    if op.customOptionsFormat != schema.CustomOptionsFormat.FLEXBUFFERS:
        fail("custom options must be a flexbuffer")
    try:
        options = decode_options(op.customOptions)
    except tfm.ModelError as exc:
        fail(str(exc))
    present = {spec.name: inputs[spec.index] >= 0 for spec in c.inputs}
    for spec in c.inputs:
        if not spec.optional and not present[spec.name]:
            fail(f"input '{spec.name}' is missing")
    expand, residual = bool(options["expand"]), bool(options["residual"])
    rules = [
        (present["expand_filter"] == expand, "option expand disagrees with the expand_filter input"),
        (present["expanded_quantization"] == expand, "option expand disagrees with the expanded_quantization input"),
        (expand or not present["expand_bias"], "expand_bias without an expansion"),
        (expand or options["expand_activation"] == 0, "expand_activation without an expansion"),
        (
            present["projected_quantization"] == residual,
            "option residual disagrees with the projected_quantization input",
        ),
        (residual or options["add_activation"] == 0, "add_activation without the residual ADD"),
    ]
    for ok, message in rules:
        if not ok:
            fail(message)

    tensors: Dict[str, schema.TensorT] = {}
    for spec in (*c.inputs, *c.outputs):
        index = (inputs if spec in c.inputs else outputs)[spec.index]
        if index < 0:
            continue
        t = sg.tensors[index]
        if t.type != schema_type(spec.int8_type):
            fail(f"tensor '{spec.name}' is {tfm.type_name(t.type)}, the contract needs {spec.int8_type}")
        is_io = spec.name in ("input", "output")
        if not is_io and tfm.constant_data(model, t) is None:
            fail(f"tensor '{spec.name}' must be constant")
        if is_io and tfm.constant_data(model, t) is not None:
            fail(f"tensor '{spec.name}' must not be constant")
        tensors[spec.name] = t

    def shape(name: str) -> Tuple[int, ...]:
        return tfm.tensor_shape(tensors[name])

    def need(name: str, want: Tuple[int, ...]):
        if shape(name) != tuple(want):
            fail(f"tensor '{name}' has shape {list(shape(name))}, the contract needs {list(want)}")

    x_shape = shape("input")
    if len(x_shape) != 4 or min(x_shape) < 1:
        fail(f"input shape {list(x_shape)} is not NHWC with positive dims")
    n, rows, cols, ci = x_shape
    dshape = shape("depthwise_filter")
    if len(dshape) != 4 or dshape[:3] != (1, 3, 3):
        fail(f"depthwise_filter shape {list(dshape)} is not [1, 3, 3, Ce] (only 3x3 kernels are supported)")
    ce = dshape[3]
    pshape = shape("project_filter")
    if len(pshape) != 4:
        fail(f"project_filter shape {list(pshape)} is not [Co, 1, 1, Ce]")
    co = pshape[0]
    limit = c.constants["INVRES_MAX_CHANNELS"]
    for what, value in (("input", ci), ("expanded", ce), ("output", co)):
        if not 1 <= value <= limit:
            fail(f"{what} channel count {value} is outside 1..{limit}")
    if expand:
        need("expand_filter", (ce, 1, 1, ci))
    elif ce != ci:
        fail(f"without expansion the depthwise filter must have the input's {ci} channels, has {ce}")
    need("project_filter", (co, 1, 1, ce))
    for name, channels in (("expand_bias", ce), ("depthwise_bias", ce), ("project_bias", co)):
        if name in tensors:
            need(name, (channels,))
    for name in ("expanded_quantization", "depthwise_quantization", "projected_quantization"):
        if name in tensors:
            need(name, (1,))
    if residual and (options["stride"] != 1 or co != ci):
        fail(f"the residual ADD needs stride 1 and Co == Ci (stride {options['stride']}, Ci {ci}, Co {co})")
    out_rows, out_cols, _, _ = geometry(rows, cols, options["stride"])
    need("output", (n, out_rows, out_cols, co))
    for name, elements in (("input", n * rows * cols * max(ci, ce)), ("output", n * out_rows * out_cols * co)):
        if elements > _MAX_ELEMENTS:
            fail(f"tensor '{name}' is too large ({elements} elements)")

    def activation(name: str) -> Quantization:
        scale, zp = tfm.per_tensor(tensors[name], f"tensor '{name}'")
        if not -128 <= zp <= 127:
            fail(f"tensor '{name}' zero point {zp} is outside [-128, 127]")
        return Quantization.of(scale, zp)

    def stage(filter_name: str, bias_name: str, dim: int, act: str) -> ConvStage:
        t = tensors[filter_name]
        scales, zps, qdim = tfm.quantization(t)
        channels = tfm.tensor_shape(t)[dim]
        if scales.size not in (1, channels):
            fail(f"tensor '{filter_name}' has {scales.size} scales; needs 1 or one per channel ({channels})")
        if scales.size > 1 and qdim != dim:
            fail(f"tensor '{filter_name}' is quantized along dimension {qdim}, the contract's is {dim}")
        if zps.size not in (1, scales.size) or np.any(zps != 0):
            fail(f"tensor '{filter_name}' must be symmetric (zero points 0)")
        if not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            fail(f"tensor '{filter_name}' has a scale that is not positive and finite")
        bias = tfm.constant_data(model, tensors[bias_name]).astype(np.int32) if bias_name in tensors else None
        return ConvStage(
            tfm.constant_data(model, t).astype(np.int8), bias, scales.astype(np.float32), int(options[act])
        )

    params = QuantizedInvertedResidual(
        stride=int(options["stride"]),
        input=activation("input"),
        expand=stage("expand_filter", "expand_bias", 0, "expand_activation") if expand else None,
        expanded=activation("expanded_quantization") if expand else None,
        depthwise=stage("depthwise_filter", "depthwise_bias", 3, "depthwise_activation"),
        depthwise_output=activation("depthwise_quantization"),
        project=stage("project_filter", "project_bias", 0, "project_activation"),
        projected=activation("projected_quantization") if residual else None,
        output=activation("output"),
        add_activation=int(options["add_activation"]),
    )
    try:
        derive(params)  # multipliers, clamps and the ADD's rescaling as TFLM derives them
    except RNNPoolError as exc:
        fail(str(exc))
    return InvertedResidualNode(
        subgraph_index,
        op_index,
        inputs[0],
        outputs[0],
        x_shape,
        shape("output"),
        options,
        params,
        tfm.tensor_label(sg, outputs[0]),
    )


# -- fusing an unfused block ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BlockOps:
    """Operator indices of one unfused block (expand / add None when absent)."""

    expand: Optional[int]
    depthwise: int
    project: int
    add: Optional[int]

    def indices(self) -> List[int]:
        return [i for i in (self.expand, self.depthwise, self.project, self.add) if i is not None]


def _carrier(model: schema.ModelT, sg: schema.SubGraphT, tensor_index: int) -> int:
    """A constant INT8 [1] tensor with the quantization (and name) of an intermediate activation."""
    src = sg.tensors[tensor_index]
    scale, zp = tfm.per_tensor(src, f"tensor {tfm.tensor_label(sg, tensor_index)}")
    return tfm.add_tensor(
        model,
        sg,
        f"{tfm._text(src.name)}/quantization",
        TensorType.INT8,
        (1,),
        data=np.zeros(1, np.int8),
        scale=np.float32(scale),
        zero_point=zp,
    )


def _builtin(model, op) -> str:
    return tfm.opcode_name(model, op.opcodeIndex)


def fuse_block(model: schema.ModelT, subgraph_index: int, block: BlockOps) -> int:
    """Rewrites one unfused block in place into an InvertedResidual op; returns its operator index.

    The ops must form the exact pattern (ModelError names what does not fit): CONV_2D 1x1 stride 1
    VALID [optional] -> DEPTHWISE_CONV_2D 3x3 SAME stride s in {1, 2}, depth multiplier 1, no
    dilation -> CONV_2D 1x1 stride 1 VALID -> [ADD of the block input and the projection], every
    intermediate read by the next op only. Weights, biases and quantizations are carried unchanged.
    """
    sg = model.subgraphs[subgraph_index]
    ops = sg.operators

    def fail(msg: str):
        raise tfm.ModelError(f"cannot fuse ops {block.indices()}: {msg}")

    def options(index: int, builtin: str):
        op = ops[index]
        if _builtin(model, op) != builtin:
            fail(f"op #{index} is {_builtin(model, op)}, expected {builtin}")
        return op, op.builtinOptions

    def conv1x1(index: int):
        op, o = options(index, "CONV_2D")
        f = sg.tensors[op.inputs[1]]
        if (
            len(tfm.tensor_shape(f)) != 4
            or tfm.tensor_shape(f)[1:3] != (1, 1)
            or o.strideH != 1
            or o.strideW != 1
            or o.dilationHFactor != 1
            or o.dilationWFactor != 1
        ):
            fail(f"op #{index} is not a 1x1 stride-1 convolution")
        return op, o

    readers: Dict[int, int] = {}
    for op in ops:
        for t in op.inputs if op.inputs is not None else []:
            if t >= 0:
                readers[int(t)] = readers.get(int(t), 0) + 1
    graph_outputs = {int(t) for t in sg.outputs}

    def intermediate(t: int):
        if readers.get(t, 0) != 1 or t in graph_outputs:
            fail(f"intermediate tensor {tfm.tensor_label(sg, t)} has other readers")

    expand_op = conv1x1(block.expand)[0] if block.expand is not None else None
    dw_op, dw = options(block.depthwise, "DEPTHWISE_CONV_2D")
    dshape = tfm.tensor_shape(sg.tensors[dw_op.inputs[1]])
    if (
        dshape[:3] != (1, 3, 3)
        or dw.padding != schema.Padding.SAME
        or dw.strideH != dw.strideW
        or dw.strideH not in (1, 2)
        or dw.dilationHFactor != 1
        or dw.dilationWFactor != 1
        or dw.depthMultiplier not in (0, 1)
    ):
        fail("the depthwise op is not a 3x3 SAME stride-1/2 depthwise convolution with depth multiplier 1")
    project_op, project = conv1x1(block.project)
    x = int(expand_op.inputs[0]) if expand_op is not None else int(dw_op.inputs[0])
    if expand_op is not None:
        if int(dw_op.inputs[0]) != int(expand_op.outputs[0]):
            fail("the depthwise op does not read the expansion's output")
        intermediate(int(expand_op.outputs[0]))
    if int(project_op.inputs[0]) != int(dw_op.outputs[0]):
        fail("the projection does not read the depthwise output")
    intermediate(int(dw_op.outputs[0]))
    projected = int(project_op.outputs[0])
    output, add_activation = projected, 0
    if block.add is not None:
        add_op, add = options(block.add, "ADD")
        if sorted(int(t) for t in add_op.inputs) != sorted((x, projected)):
            fail("the ADD does not add the block input and the projection")
        intermediate(projected)
        output, add_activation = int(add_op.outputs[0]), int(add.fusedActivationFunction)

    def optional(op, position: int) -> int:
        ins = op.inputs if op.inputs is not None else []
        return int(ins[position]) if len(ins) > position and ins[position] >= 0 else -1

    fused_inputs = [
        x,
        int(expand_op.inputs[1]) if expand_op is not None else -1,
        optional(expand_op, 2) if expand_op is not None else -1,
        _carrier(model, sg, int(expand_op.outputs[0])) if expand_op is not None else -1,
        int(dw_op.inputs[1]),
        optional(dw_op, 2),
        _carrier(model, sg, int(dw_op.outputs[0])),
        int(project_op.inputs[1]),
        optional(project_op, 2),
        _carrier(model, sg, projected) if block.add is not None else -1,
    ]
    option_values = {
        "version": inverted_residual_contract().version,
        "stride": int(dw.strideH),
        "expand": int(expand_op is not None),
        "residual": int(block.add is not None),
        "expand_activation": int(ops[block.expand].builtinOptions.fusedActivationFunction)
        if expand_op is not None
        else 0,
        "depthwise_activation": int(dw.fusedActivationFunction),
        "project_activation": int(project.fusedActivationFunction),
        "add_activation": add_activation,
    }
    try:
        inverted_residual_contract().check_options(option_values)
    except ValueError as exc:
        fail(str(exc))
    fused = schema.OperatorT()
    fused.opcodeIndex = tfm.opcode_index(
        model, BuiltinOperator.CUSTOM, inverted_residual_contract().custom_code, inverted_residual_contract().version
    )
    fused.inputs, fused.outputs = fused_inputs, [output]
    fused.customOptions = list(flexbuffers.Dumps(option_values))
    fused.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS
    first = min(block.indices())
    sg.operators = [fused if i == first else op for i, op in enumerate(ops) if i == first or i not in block.indices()]
    tfm.remove_unused(model)
    decode(model, subgraph_index, first)  # the rewrite must satisfy the contract it targets
    return first


def chain_after(model: schema.ModelT, subgraph_index: int, ops: Sequence[int]) -> BlockOps:
    """BlockOps for ops listed in order (3 or 4 ops: [expand,] depthwise, project[, add]),
    the shape of a single converted block."""
    names = [_builtin(model, model.subgraphs[subgraph_index].operators[i]) for i in ops]
    expand = ops[0] if names[0] == "CONV_2D" else None
    rest = list(ops[1:] if expand is not None else ops)
    add = rest.pop() if len(rest) == 3 and names[-1] == "ADD" else None
    if len(rest) != 2:
        raise tfm.ModelError(f"ops {names} are not an inverted-residual block")
    return BlockOps(expand, rest[0], rest[1], add)
