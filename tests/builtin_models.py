"""A tiny int8 model of builtin ops, built with the schema (no TensorFlow), for the
reader's validation tests: input [1, 4, 4, 2] -> CONV_2D 1x1 (3 filters, per-channel)
-> CONV_2D 1x1 (2 filters) -> ADD with the input -> output. `unchecked` parses one without validation so a
test can break it and write it back."""

from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from rnnpool_tflm.tflite import model as tfm


def _conv(m, sg, x: int, out_name: str, filters: int, channels: int, out_scale: float, seed: int) -> int:
    rng = np.random.default_rng(seed)
    w_scale = np.full(filters, 0.02, np.float32)
    w = tfm.add_tensor(
        m,
        sg,
        f"{out_name}/filter",
        tfm.TensorType.INT8,
        (filters, 1, 1, channels),
        data=rng.integers(-127, 128, (filters, 1, 1, channels)).astype(np.int8),
        scale=w_scale,
        zero_point=np.zeros(filters, np.int64),
    )
    in_scale = sg.tensors[x].quantization.scale[0]
    b = tfm.add_tensor(
        m,
        sg,
        f"{out_name}/bias",
        tfm.TensorType.INT32,
        (filters,),
        data=rng.integers(-500, 500, filters).astype(np.int32),
        scale=w_scale * in_scale,
        zero_point=np.zeros(filters, np.int64),
    )
    y = tfm.add_tensor(m, sg, out_name, tfm.TensorType.INT8, (1, 4, 4, filters), scale=out_scale, zero_point=3)
    op = schema.OperatorT()
    op.opcodeIndex = tfm.opcode_index(m, tfm.BuiltinOperator.CONV_2D)
    op.inputs, op.outputs = [x, w, b], [y]
    op.builtinOptionsType = schema.BuiltinOptions.Conv2DOptions
    options = schema.Conv2DOptionsT()
    options.padding, options.strideH, options.strideW = schema.Padding.VALID, 1, 1
    options.dilationHFactor = options.dilationWFactor = 1
    op.builtinOptions = options
    sg.operators.append(op)
    return y


def conv_chain() -> bytes:
    m = schema.ModelT()
    m.version, m.description = 3, "builtin test model"
    m.operatorCodes, m.buffers = [], [schema.BufferT()]
    sg = schema.SubGraphT()
    sg.tensors, sg.operators, sg.name = [], [], "main"
    x = tfm.add_tensor(m, sg, "input", tfm.TensorType.INT8, (1, 4, 4, 2), scale=0.05, zero_point=-2)
    h = _conv(m, sg, x, "hidden", 3, 2, 0.1, 0)
    c = _conv(m, sg, h, "projected", 2, 3, 0.2, 1)
    y = tfm.add_tensor(m, sg, "output", tfm.TensorType.INT8, (1, 4, 4, 2), scale=0.25, zero_point=0)
    add = schema.OperatorT()
    add.opcodeIndex = tfm.opcode_index(m, tfm.BuiltinOperator.ADD)
    add.inputs, add.outputs = [c, x], [y]
    add.builtinOptionsType = schema.BuiltinOptions.AddOptions
    add.builtinOptions = schema.AddOptionsT()
    sg.operators.append(add)
    sg.inputs, sg.outputs = [x], [y]
    m.subgraphs = [sg]
    return tfm.write_model(m)


def unchecked(model: bytes) -> schema.ModelT:
    """The model's object tree, not validated (for breaking it on purpose)."""
    return schema.ModelT.InitFromPackedBuf(model, 0)
