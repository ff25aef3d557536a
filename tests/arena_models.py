"""Small int8 models for the arena tests, built with the TF converter (no RNNPool).

Together they cover every builtin op the arena model knows: CONV_2D (3x3, 1x1, 1xN,
strided, valid/same), DEPTHWISE_CONV_2D, FULLY_CONNECTED (2-D and 4-D), ADD, MUL,
AVERAGE_POOL_2D, MAX_POOL_2D, MEAN, RESHAPE, SOFTMAX, QUANTIZE, DEQUANTIZE, PAD,
CONCATENATION, LOGISTIC, RELU, RELU6, STRIDED_SLICE.
"""

from __future__ import annotations

import functools

import numpy as np

from rnnpool_tflm.core.keras import keras

L = keras.layers


def convert(model, float_io: bool = False) -> bytes:
    import tensorflow as tf

    shape = tuple(model.input_shape[1:])

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.standard_normal((1,) + shape).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def _inverted_residual(x, expand, out, stride):
    channels = x.shape[-1]
    y = L.Conv2D(channels * expand, 1, use_bias=False)(x)
    y = L.ReLU(6.0)(L.BatchNormalization()(y))
    y = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(y)
    y = L.ReLU(6.0)(L.BatchNormalization()(y))
    y = L.BatchNormalization()(L.Conv2D(out, 1, use_bias=False)(y))
    return L.Add()([x, y]) if stride == 1 and channels == out else y


def mobilenet_like(size: int = 32, width: int = 8):
    """Conv stride 2 -> three inverted-residual blocks -> GAP (MEAN) -> Dense."""
    i = keras.Input((size, size, 3))
    x = L.Conv2D(width, 3, strides=2, padding="same", activation="relu")(i)
    x = _inverted_residual(x, 4, width, 1)
    x = _inverted_residual(x, 4, 2 * width, 2)
    x = _inverted_residual(x, 4, 2 * width, 1)
    return keras.Model(i, L.Dense(10)(L.GlobalAveragePooling2D()(x)))


def pooling():
    i = keras.Input((40, 40, 4))
    x = L.Conv2D(12, 5, padding="valid", activation="relu")(i)
    x = L.MaxPooling2D(2)(x)
    x = L.Conv2D(24, 3, strides=2, padding="same")(x)
    x = L.AveragePooling2D(3, strides=2, padding="same")(x)
    return keras.Model(i, L.Dense(5)(L.Flatten()(x)))


def dense():
    i = keras.Input((64,))
    x = L.Dense(96, activation="relu")(i)
    x = L.Dense(48, activation="relu")(x)
    return keras.Model(i, L.Dense(10, activation="softmax")(x))


def mixed():
    """Concatenation, logistic, quantize, pad, mul, add, strided slice, 4-D dense, reshape, softmax."""
    i = keras.Input((24, 24, 8), batch_size=1)
    a = L.Conv2D(8, 3, padding="same")(i)
    b = L.DepthwiseConv2D(5, padding="same", activation="sigmoid")(i)
    x = L.Conv2D(16, 3)(L.ZeroPadding2D(1)(L.Concatenate()([a, b])))
    x = L.ReLU()(L.Add()([x, L.Multiply()([x, x])]))
    x = L.MaxPooling2D(2)(L.ZeroPadding2D(2)(x))
    x = L.Reshape((100, 16))(L.Cropping2D(2)(x))
    x = L.Reshape((300,))(L.Dense(3)(x))
    return keras.Model(i, L.Dense(3, activation="softmax")(x))


def activations():
    """Standalone RELU6, RELU and LOGISTIC (after concatenations, so not fused)."""
    i = keras.Input((20, 20, 4), batch_size=1)
    x = L.ReLU(6.0)(L.Concatenate()([L.Conv2D(4, 3, padding="same")(i), i]))
    x = L.MaxPooling2D(2)(x)
    x = L.ReLU()(L.Concatenate()([x, L.Conv2D(8, 1)(x)]))
    x = L.Activation("sigmoid")(L.Conv2D(8, 3, strides=2)(x))
    x = L.Flatten()(L.AveragePooling2D(4)(x))
    return keras.Model(i, L.Softmax()(L.Dense(6)(x)))


def conv_1xn():
    """1-row convolutions (CMSIS-NN's 1xN path) and a VALID depthwise."""
    i = keras.Input((1, 32, 6))
    x = L.Conv2D(8, (1, 3), padding="same")(i)
    x = L.Conv2D(8, (1, 5), strides=(1, 2), padding="valid")(x)
    x = L.DepthwiseConv2D((1, 7), padding="valid")(x)
    return keras.Model(i, L.Dense(4)(L.Flatten()(x)))


def tanh_model():
    """TANH, which the arena model does not know (its estimate is a guess)."""
    i = keras.Input((8, 8, 2))
    x = L.Activation("tanh")(L.Concatenate()([L.Conv2D(2, 3, padding="same")(i), i]))
    return keras.Model(i, L.Dense(3)(L.Flatten()(x)))


@functools.lru_cache(maxsize=1)
def builtin_models() -> dict:
    """name -> int8 .tflite bytes (about 1-2 s of conversion each; built once per session)."""
    keras.utils.set_random_seed(0)
    return {
        "mobilenet_like_32": convert(mobilenet_like(32, 8)),
        "mobilenet_like_48_float_io": convert(mobilenet_like(48, 16), float_io=True),
        "pooling": convert(pooling()),
        "dense": convert(dense()),
        "mixed": convert(mixed()),
        "activations": convert(activations()),
        "conv_1xn": convert(conv_1xn()),
    }


def _placeholder_model(size, channels, patch, stride, out_channels):
    """Conv(stride 2) -> AveragePool(patch, stride) -> 1x1 Conv(out_channels) -> GAP -> Dense;
    the pool and the 1x1 conv are where the RNNPool op goes."""
    i = keras.Input((size, size, 3))
    x = L.Conv2D(channels, 3, strides=2, padding="same", activation="relu")(i)
    x = L.AveragePooling2D(patch, strides=stride)(x)
    x = L.Conv2D(out_channels, 1)(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(10)(x))


def rnnpool_model(
    size: int = 32, channels: int = 8, patch: int = 8, stride: int = 4, hidden1: int = 16, hidden2: int = 16
) -> bytes:
    """An int8 model with one CUSTOM "RNNPool" op (op contract inputs, flexbuffer options).

    Built by converting a stand-in Keras model and replacing its AVERAGE_POOL_2D + 1x1
    CONV_2D pair with the custom op; the weights are random but well-formed, enough
    for memory planning (not for meaningful outputs)."""
    import flatbuffers
    from flatbuffers import flexbuffers
    from tflite_micro.tensorflow.lite.python import schema_py_generated as schema

    keras.utils.set_random_seed(1)
    base = convert(_placeholder_model(size, channels, patch, stride, 4 * hidden2))
    model = schema.ModelT.InitFromPackedBuf(base, 0)
    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    ops = graph.operators
    pool_at = next(i for i, op in enumerate(ops) if codes[op.opcodeIndex] == schema.BuiltinOperator.AVERAGE_POOL_2D)
    pool, conv = ops[pool_at], ops[pool_at + 1]
    assert codes[conv.opcodeIndex] == schema.BuiltinOperator.CONV_2D and conv.inputs[0] == pool.outputs[0]

    rng = np.random.default_rng(2)

    def constant(name, array, tensor_type, scale=None):
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        model.buffers.append(buffer)
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type = name.encode(), list(array.shape), tensor_type
        tensor.buffer = len(model.buffers) - 1
        if scale is not None:
            tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.scale = [scale]
            tensor.quantization.zeroPoint = [0]
        graph.tensors.append(tensor)
        return len(graph.tensors) - 1

    int8 = lambda shape: rng.integers(-60, 60, shape).astype(np.int8)
    inputs = [
        pool.inputs[0],
        constant("w1", int8((hidden1, channels)), schema.TensorType.INT8, 0.01),
        constant("u1", int8((hidden1, hidden1)), schema.TensorType.INT8, 0.01),
        constant("bias1", rng.integers(-500, 500, (2, hidden1)).astype(np.int32), schema.TensorType.INT32),
        constant("w2", int8((hidden2, hidden1)), schema.TensorType.INT8, 0.01),
        constant("u2", int8((hidden2, hidden2)), schema.TensorType.INT8, 0.01),
        constant("bias2", rng.integers(-500, 500, (2, hidden2)).astype(np.int32), schema.TensorType.INT32),
        constant("fastgrnn_scalars", np.array([[1000, 15000], [1200, 14000]], np.int16), schema.TensorType.INT16),
    ]
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = b"RNNPool"
    code.version = 1
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs, op.outputs = inputs, list(conv.outputs)
    op.customOptions = np.frombuffer(
        bytes(
            flexbuffers.Dumps(
                {
                    "version": 1,
                    "patch_rows": patch,
                    "patch_cols": patch,
                    "stride_rows": stride,
                    "stride_cols": stride,
                    "padding": 0,
                    "gate_activation": 0,
                    "update_activation": 0,
                }
            )
        ),
        np.uint8,
    )
    graph.operators = ops[:pool_at] + [op] + ops[pool_at + 2 :]

    # Drop the tensors only the removed ops used, renumbering the rest.
    used = {t for o in graph.operators for t in list(o.inputs) + list(o.outputs) if t >= 0}
    used |= set(graph.inputs) | set(graph.outputs)
    keep = [t for t in range(len(graph.tensors)) if t in used]
    renumber = {old: new for new, old in enumerate(keep)}
    graph.tensors = [graph.tensors[t] for t in keep]
    for o in graph.operators:
        o.inputs = [renumber[t] if t >= 0 else t for t in o.inputs]
        o.outputs = [renumber[t] for t in o.outputs]
    graph.inputs = [renumber[t] for t in graph.inputs]
    graph.outputs = [renumber[t] for t in graph.outputs]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
