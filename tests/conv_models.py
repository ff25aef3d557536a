"""int8 CONV_2D test models built with the schema (no TensorFlow), for the narrow CONV_2D
kernel's tests (custom_ops/conv): one model holds several convolutions of its inputs, each
its own output, so one host run or one emulated firmware checks them all."""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np
from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

from rnnpool_tflm.tflite import model as tfm

ACTIVATIONS = {"none": schema.ActivationFunctionType.NONE, "relu6": schema.ActivationFunctionType.RELU6}


@dataclasses.dataclass(frozen=True)
class ConvCase:
    input_hw: tuple  # (H, W)
    channels: int
    filters: int
    kernel: tuple = (3, 3)
    stride: int = 1
    same: bool = True
    activation: str = "none"
    per_channel: bool = True
    bias: bool = True
    seed: int = 0

    def output_hw(self):
        (h, w), (kh, kw), s = self.input_hw, self.kernel, self.stride
        if self.same:
            return (-(-h // s), -(-w // s))
        return ((h - kh) // s + 1, (w - kw) // s + 1)

    def leading_padding(self):
        """TFLM's ComputePaddingHeightWidth (leading side)."""
        if not self.same:
            return (0, 0)
        (h, w), (kh, kw), s, (oh, ow) = self.input_hw, self.kernel, self.stride, self.output_hw()
        return (max((oh - 1) * s + kh - h, 0) // 2, max((ow - 1) * s + kw - w, 0) // 2)


@dataclasses.dataclass
class BuiltConv:
    case: ConvCase
    filter: np.ndarray
    bias: np.ndarray
    input_scale: float
    input_zero_point: int
    filter_scales: np.ndarray
    output_scale: float
    output_zero_point: int


def _conv(m, sg, x: int, case: ConvCase, index: int, input_scale: float) -> tuple:
    rng = np.random.default_rng(case.seed)
    kh, kw = case.kernel
    shape = (case.filters, kh, kw, case.channels)
    w = rng.integers(-127, 128, shape).astype(np.int8)
    scales = rng.uniform(0.002, 0.03, case.filters if case.per_channel else 1).astype(np.float32)
    per_out = np.broadcast_to(scales, (case.filters,)).astype(np.float32)
    b = rng.integers(-3000, 3000, case.filters).astype(np.int32)
    wi = tfm.add_tensor(
        m,
        sg,
        f"conv{index}/filter",
        tfm.TensorType.INT8,
        shape,
        data=w,
        scale=scales,
        zero_point=np.zeros(len(scales), np.int64),
    )
    inputs = [x, wi]
    if case.bias:
        inputs.append(
            tfm.add_tensor(
                m,
                sg,
                f"conv{index}/bias",
                tfm.TensorType.INT32,
                (case.filters,),
                data=b,
                scale=(per_out * input_scale).astype(np.float32),
                zero_point=np.zeros(case.filters, np.int64),
            )
        )
    fan_in = kh * kw * case.channels
    out_scale = float(input_scale * per_out.mean() * np.sqrt(fan_in) * 24.0)
    out_zp = int(rng.integers(-20, 20))
    y = tfm.add_tensor(
        m,
        sg,
        f"conv{index}",
        tfm.TensorType.INT8,
        (1, *case.output_hw(), case.filters),
        scale=out_scale,
        zero_point=out_zp,
    )
    op = schema.OperatorT()
    op.opcodeIndex = tfm.opcode_index(m, tfm.BuiltinOperator.CONV_2D)
    op.inputs, op.outputs = inputs, [y]
    op.builtinOptionsType = schema.BuiltinOptions.Conv2DOptions
    options = schema.Conv2DOptionsT()
    options.padding = schema.Padding.SAME if case.same else schema.Padding.VALID
    options.strideH = options.strideW = case.stride
    options.dilationHFactor = options.dilationWFactor = 1
    options.fusedActivationFunction = ACTIVATIONS[case.activation]
    op.builtinOptions = options
    sg.operators.append(op)
    built = BuiltConv(case, w, b if case.bias else None, input_scale, 0, per_out, out_scale, out_zp)
    return y, built


def conv_model(cases: Sequence[ConvCase]) -> tuple:
    """(model bytes, [BuiltConv]): one int8 input per distinct (H, W, C), each case a CONV_2D of
    its input to its own output."""
    m = schema.ModelT()
    m.version, m.description = 3, "narrow conv test model"
    m.operatorCodes, m.buffers = [], [schema.BufferT()]
    sg = schema.SubGraphT()
    sg.tensors, sg.operators, sg.name = [], [], "main"
    inputs, outputs, built = {}, [], []
    for i, case in enumerate(cases):
        key = (*case.input_hw, case.channels)
        if key not in inputs:
            zp = -5 + 3 * len(inputs)
            inputs[key] = (
                tfm.add_tensor(m, sg, f"input{len(inputs)}", tfm.TensorType.INT8, (1, *key), scale=0.05, zero_point=zp),
                zp,
            )
        x, zp = inputs[key]
        y, b = _conv(m, sg, x, case, i, 0.05)
        b.input_zero_point = zp
        outputs.append(y)
        built.append(b)
    sg.inputs = [x for x, _ in inputs.values()]
    sg.outputs = outputs
    m.subgraphs = [sg]
    return tfm.write_model(m), built, list(inputs)


def random_inputs(keys: List[tuple], seed: int = 1) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(-128, 128, (1, *k)).astype(np.int8) for k in keys]
