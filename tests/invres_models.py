"""Inverted-residual blocks for the InvertedResidual op's tests.

random_params(): int8 parameters of one block (reference.inverted_residual_random).
unfused_model(): the block as the TF converter emits it -- CONV_2D 1x1 (fused
  activation) -> DEPTHWISE_CONV_2D 3x3 SAME -> CONV_2D 1x1 [-> ADD] -- written directly
  with the flatbuffer schema (fast: hypothesis builds hundreds).
fused_model(): the same model after tflite.inverted_residual_op.fuse_block.
keras_block_model(): a Keras block (analysis.zoo.inverted_residual) with random weights
  and BatchNorm statistics, converted by the TF converter with a representative dataset.
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from rnnpool_tflm.reference.inverted_residual import ConvStage, Quantization, QuantizedInvertedResidual, geometry
from rnnpool_tflm.reference.inverted_residual_random import random_block

random_params = random_block  # (rng, ci, ce, co, stride, expand, residual, activations, per_channel, biases, gain)


def _tensor(s, name: str, ttype: int, shape, buffer: int, q: Optional[Tuple], dim: int = 0):
    t = s.TensorT()
    t.name, t.type, t.shape, t.buffer = name.encode(), ttype, [int(v) for v in shape], buffer
    if q is not None:
        scales, zps = q
        qp = s.QuantizationParametersT()
        qp.scale = [float(v) for v in np.atleast_1d(scales)]
        qp.zeroPoint = [int(v) for v in np.broadcast_to(np.atleast_1d(zps), (len(qp.scale),))]
        qp.quantizedDimension = dim
        t.quantization = qp
    return t


def unfused_model(p: QuantizedInvertedResidual, input_shape: Tuple[int, int, int, int]) -> bytes:
    """The block as builtin TFLite ops (what the TF converter emits for it)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.python import schema_py_generated as s

    T = s.TensorType
    n, h, w, ci = input_shape
    ho, wo, _, _ = geometry(h, w, p.stride)
    ce, co = p.expanded_channels, p.out_channels
    buffers, tensors, ops, codes = [b""], [], [], []

    def buf(array) -> int:
        buffers.append(np.ascontiguousarray(array).tobytes())
        return len(buffers) - 1

    def tensor(name, ttype, shape, data=None, q=None, dim=0) -> int:
        tensors.append(_tensor(s, name, ttype, shape, buf(data) if data is not None else 0, q, dim))
        return len(tensors) - 1

    def act(name, shape, q: Quantization) -> int:
        return tensor(name, T.INT8, shape, q=(q.scale, q.zero_point))

    def code(builtin) -> int:
        if builtin not in codes:
            codes.append(builtin)
        return codes.index(builtin)

    def conv_inputs(prefix, stage: ConvStage, s_in, dim):
        wt = tensor(f"{prefix}/filter", T.INT8, stage.filter.shape, stage.filter, (stage.scales, 0), dim)
        channels = stage.filter.shape[dim]
        if stage.bias is None:  # no bias input at all (TFLM's kernels crash on a -1 bias with compression)
            return [wt]
        bias_scales = (np.float32(s_in) * np.broadcast_to(stage.scales, (channels,))).astype(np.float32)
        return [wt, tensor(f"{prefix}/bias", T.INT32, (channels,), stage.bias.astype(np.int32), (bias_scales, 0))]

    def op(builtin, inputs, outputs, options_type, options):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code(builtin), inputs, outputs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        ops.append(o)

    def conv1x1_options(activation):
        o = s.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor = s.Padding.VALID, 1, 1, 1, 1
        o.fusedActivationFunction = activation
        return o

    x = act("input", input_shape, p.input)
    e = x
    if p.expand is not None:
        e = act("expanded", (n, h, w, ce), p.expanded)
        op(
            s.BuiltinOperator.CONV_2D,
            [x, *conv_inputs("expand", p.expand, p.input.scale, 0)],
            [e],
            s.BuiltinOptions.Conv2DOptions,
            conv1x1_options(p.expand.activation),
        )
    s_e = p.expanded.scale if p.expand is not None else p.input.scale
    d = act("depthwise", (n, ho, wo, ce), p.depthwise_output)
    dwo = s.DepthwiseConv2DOptionsT()
    dwo.padding, dwo.strideH, dwo.strideW, dwo.depthMultiplier = s.Padding.SAME, p.stride, p.stride, 1
    dwo.dilationHFactor, dwo.dilationWFactor, dwo.fusedActivationFunction = 1, 1, p.depthwise.activation
    op(
        s.BuiltinOperator.DEPTHWISE_CONV_2D,
        [e, *conv_inputs("depthwise", p.depthwise, s_e, 3)],
        [d],
        s.BuiltinOptions.DepthwiseConv2DOptions,
        dwo,
    )
    y = act("projected" if p.residual else "output", (n, ho, wo, co), p.projected if p.residual else p.output)
    op(
        s.BuiltinOperator.CONV_2D,
        [d, *conv_inputs("project", p.project, p.depthwise_output.scale, 0)],
        [y],
        s.BuiltinOptions.Conv2DOptions,
        conv1x1_options(p.project.activation),
    )
    out = y
    if p.residual:
        out = act("output", (n, ho, wo, co), p.output)
        addo = s.AddOptionsT()
        addo.fusedActivationFunction = p.add_activation
        op(s.BuiltinOperator.ADD, [x, y], [out], s.BuiltinOptions.AddOptions, addo)

    sub = s.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = tensors, [x], [out], ops, b"main"
    model = s.ModelT()
    model.version, model.subgraphs, model.description = 3, [sub], b"inverted residual test"
    model.operatorCodes = []
    for builtin in codes:
        c = s.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = builtin, min(builtin, 127), 1
        model.operatorCodes.append(c)
    model.buffers = []
    for data in buffers:
        b = s.BufferT()
        b.data = list(data) if data else None
        model.buffers.append(b)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def fused_model(unfused: bytes) -> bytes:
    """The single-block model with its ops rewritten into one InvertedResidual op."""
    from rnnpool_tflm.tflite import inverted_residual_op as irop
    from rnnpool_tflm.tflite import model as tfm

    m = tfm.read_model(unfused)
    irop.fuse_block(m, 0, irop.chain_after(m, 0, list(range(len(m.subgraphs[0].operators)))))
    return tfm.write_model(m)


def random_input(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


@functools.cache
def keras_block_model(
    rows: int, cols: int, channels: int, expansion: int, filters: int, stride: int, seed: int = 0
) -> bytes:
    """analysis.zoo.inverted_residual on a [1, rows, cols, channels] input, random weights and BN
    statistics, converted to int8 by the TF converter (builtin ops only)."""
    import tensorflow as tf

    import rnnpool_tflm  # noqa: F401  (Keras 2 before TensorFlow)
    from rnnpool_tflm.analysis.zoo import inverted_residual
    from rnnpool_tflm.core.keras import keras

    tf.keras.utils.set_random_seed(seed)
    inputs = keras.Input((rows, cols, channels))
    model = keras.Model(inputs, inverted_residual(inputs, expansion, filters, stride, "block"))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mu, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, g.shape),
                    rng.normal(0, 0.3, b.shape),
                    rng.normal(0, 0.3, mu.shape),
                    rng.uniform(0.5, 1.5, var.shape),
                ]
            )

    def representative():
        data = np.random.default_rng(seed + 1)
        for _ in range(16):
            yield [data.uniform(-1, 1, (1, rows, cols, channels)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())
