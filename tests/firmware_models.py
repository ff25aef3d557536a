"""Small .tflite models for the firmware and registerer tests.

conv_model(): a plain int8 CONV_2D model made with the TF converter (builtin ops only).
wide_model(): builtin ops whose arena grows in fixed steps with the input width (fit tests).
rnnpool_model(): an int8 model whose only operator is the RNNPool custom op, built
directly with the flatbuffer schema from golden quantized parameters
(rnnpool_tflm.reference.quantize_rnnpool) and flexbuffer options per the op contract;
its reference output is rnnpool_tflm.reference.rnnpool_int8.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def conv_model(height: int = 16, width: int = 16, channels: int = 3, filters: int = 8, seed: int = 0) -> bytes:
    import tensorflow as tf

    import rnnpool_tflm  # noqa: F401  (Keras 2 before TensorFlow)

    rng = np.random.default_rng(seed)
    kernel = tf.constant(rng.normal(0, 0.3, (3, 3, channels, filters)).astype(np.float32))
    bias = tf.constant(rng.normal(0, 0.1, (filters,)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, height, width, channels], tf.float32)])
    def model(x):
        y = tf.nn.conv2d(x, kernel, strides=2, padding="SAME") + bias
        return tf.nn.relu(y)

    def representative():
        data = np.random.default_rng(seed + 1)
        for _ in range(8):
            yield [data.uniform(-1, 1, (1, height, width, channels)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@functools.cache
def wide_model(width: int, rows: int = 8, channels: int = 8, seed: int = 0) -> bytes:
    """An int8 model whose arena grows by a fixed step per input column while its input and
    output (the firmware's embedded test data) stay small: a 1x1 CONV_2D expands the
    (1, rows, width, 1) input to `channels`, a 3x3 DEPTHWISE_CONV_2D keeps that size (both
    maps alive at once: the arena's peak), and a 1x1 CONV_2D with stride `rows` reduces it
    to one channel."""
    import tensorflow as tf

    import rnnpool_tflm  # noqa: F401  (Keras 2 before TensorFlow)

    rng = np.random.default_rng(seed)
    expand = tf.constant(rng.normal(0, 0.5, (1, 1, 1, channels)).astype(np.float32))
    depthwise = tf.constant(rng.normal(0, 0.3, (3, 3, channels, 1)).astype(np.float32))
    reduce = tf.constant(rng.normal(0, 0.3, (1, 1, channels, 1)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, rows, width, 1], tf.float32)])
    def model(x):
        y = tf.nn.relu(tf.nn.conv2d(x, expand, strides=1, padding="SAME"))
        y = tf.nn.relu(tf.nn.depthwise_conv2d(y, depthwise, strides=[1, 1, 1, 1], padding="SAME"))
        return tf.nn.conv2d(y, reduce, strides=rows, padding="SAME")

    def representative():
        data = np.random.default_rng(seed + 1)
        for _ in range(4):
            yield [data.uniform(-1, 1, (1, rows, width, 1)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def rnnpool_options(config) -> bytes:
    """The op's flexbuffer options for an RNNPoolConfig (keys from the contract header)."""
    from flatbuffers import flexbuffers

    values = {
        "version": 1,
        "patch_rows": config.patch_size[0],
        "patch_cols": config.patch_size[1],
        "stride_rows": config.strides[0],
        "stride_cols": config.strides[1],
        "padding": 1 if config.padding == "same" else 0,
        "gate_activation": 1 if config.gate_activation == "hard_sigmoid" else 0,
        "update_activation": 1 if config.update_activation == "hard_tanh" else 0,
    }
    if any(config.output_padding):  # optional keys (default 0): written only when used
        values.update(output_pad_bottom=config.output_padding[0], output_pad_right=config.output_padding[1])
    if config.rnn1_mode == "recompute":
        values.update(rnn1_mode=1)
    return bytes(flexbuffers.Dumps(values))


def _single_op_model(tensors, options: bytes) -> bytes:
    """A one-operator model: tensors[0] is the graph input, tensors[-1] the output, the
    rest constant inputs. Each tensor: (name, schema type, shape, data or None, scale or None,
    zero point)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.python import schema_py_generated as s

    buffers, table = [b""], []  # buffer 0: empty (by convention)
    for name, ttype, shape, data, scale, zero_point in tensors:
        buf = 0
        if data is not None:
            buffers.append(np.ascontiguousarray(data).tobytes())
            buf = len(buffers) - 1
        q = None
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [int(v) for v in np.broadcast_to(np.atleast_1d(zero_point or 0), (len(q.scale),))]
            q.quantizedDimension = 0
        t = s.TensorT()
        t.name, t.type, t.shape, t.buffer, t.quantization = name.encode(), ttype, list(shape), buf, q
        table.append(t)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, list(range(len(tensors) - 1)), [len(tensors) - 1]
    op.customOptions = list(options)
    op.customOptionsFormat = s.CustomOptionsFormat.FLEXBUFFERS
    sub = s.SubGraphT()
    sub.tensors, sub.inputs, sub.outputs, sub.operators, sub.name = table, [0], [len(tensors) - 1], [op], b"main"
    code = s.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version = (
        s.BuiltinOperator.CUSTOM,
        s.BuiltinOperator.CUSTOM,
        b"RNNPool",
        1,
    )
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.description = 3, [code], [sub], b"rnnpool test"
    model.buffers = []
    for data in buffers:
        b = s.BufferT()
        b.data = list(data) if data else None
        model.buffers.append(b)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def rnnpool_model(params, input_shape, options: bytes = None) -> bytes:
    """An int8 model: input -> RNNPool -> output, from a QuantizedRNNPool."""
    from tflite_micro.tensorflow.lite.python import schema_py_generated as s

    p = params
    out_shape = p.config.output_shape(input_shape)
    T = s.TensorType
    return _single_op_model(
        [
            ("input", T.INT8, input_shape, None, p.input_scale, p.input_zero_point),
            ("w1", T.INT8, p.w1.shape, p.w1, p.w1_scale, 0),
            ("u1", T.INT8, p.u1.shape, p.u1, p.u1_scale, 0),
            ("bias1", T.INT32, p.bias1.shape, p.bias1.astype(np.int32), None, None),
            ("w2", T.INT8, p.w2.shape, p.w2, p.w2_scale, 0),
            ("u2", T.INT8, p.u2.shape, p.u2, p.u2_scale, 0),
            ("bias2", T.INT32, p.bias2.shape, p.bias2.astype(np.int32), None, None),
            ("fastgrnn_scalars", T.INT16, p.scalars.shape, p.scalars.astype(np.int16), None, None),
            ("output", T.INT8, out_shape, None, p.output_scale, p.output_zero_point),
        ],
        rnnpool_options(p.config) if options is None else options,
    )


def rnnpool_float_model(weights, config, input_shape, options: bytes = None) -> bytes:
    """A float32 model: input -> RNNPool (float variant) -> output, from float weights."""
    from tflite_micro.tensorflow.lite.python import schema_py_generated as s

    c1, c2 = weights.rnn1, weights.rnn2
    out_shape = config.output_shape(input_shape)
    sig = lambda v: 1.0 / (1.0 + np.exp(-np.float64(v)))  # noqa: E731
    f32 = lambda a: np.ascontiguousarray(a, np.float32)  # noqa: E731
    T = s.TensorType
    return _single_op_model(
        [
            ("input", T.FLOAT32, input_shape, None, None, None),
            ("w1", T.FLOAT32, c1.w.shape[::-1], f32(np.asarray(c1.w).T), None, None),
            ("u1", T.FLOAT32, c1.u.shape, f32(np.asarray(c1.u).T), None, None),
            ("bias1", T.FLOAT32, (2, c1.hidden), f32(np.stack([c1.bias_gate, c1.bias_update])), None, None),
            ("w2", T.FLOAT32, c2.w.shape[::-1], f32(np.asarray(c2.w).T), None, None),
            ("u2", T.FLOAT32, c2.u.shape, f32(np.asarray(c2.u).T), None, None),
            ("bias2", T.FLOAT32, (2, c2.hidden), f32(np.stack([c2.bias_gate, c2.bias_update])), None, None),
            (
                "fastgrnn_scalars",
                T.FLOAT32,
                (2, 2),
                f32([[sig(c1.zeta), sig(c1.nu)], [sig(c2.zeta), sig(c2.nu)]]),
                None,
                None,
            ),
            ("output", T.FLOAT32, out_shape, None, None, None),
        ],
        rnnpool_options(config) if options is None else options,
    )
