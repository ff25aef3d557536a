"""Keras model -> int8 .tflite where each RNNPool layer is ONE custom op (a model without
RNNPool converts like any Keras model: only builtin ops).

    tflite_bytes = rnnpool_tflm.convert.convert(model, representative_data=None, float_io=False)

How (docs/custom_op.md has the op itself):

1. Split. One Keras model of the builtin part is built from the model's layer
   graph: its inputs are the model inputs plus every RNNPool output, its outputs
   the model outputs plus every RNNPool input. For a QAT model each RNNPool-output
   input is followed by a fake-quant with that RNNPool's output range, so the
   converter gives the tensor exactly the quantization training used.
2. Convert that model once with TFLiteConverter (int8 builtins, int8 I/O; for a
   float model, post-training quantization calibrated on the representative data,
   RNNPool outputs included, obtained by running the model on it).
3. Splice. For every RNNPool: quantize its weights for the (scale, zero point) the
   converter assigned to its input and output tensors
   (reference.quantize_rnnpool), add the weight tensors and one CUSTOM operator
   joining the two tensors, drop both from the graph I/O, sort the operators, and
   for float I/O add QUANTIZE/DEQUANTIZE at the real inputs and outputs.
4. Fuse (on by default, `fuse=False` / `--no-fuse` keeps the plain graph): a replicate
   pad after an RNNPool op (slice + concatenation ops that only copy bytes) becomes
   the op's output_pad_* options (convert/pad_fold.py), and every MobileNetV2 block
   (CONV_2D 1x1 -> DEPTHWISE_CONV_2D 3x3 -> CONV_2D 1x1 [-> ADD]) one InvertedResidual op
   (convert/ir_fusion.py). The output bytes do not change.
5. Validate: re-read the flatbuffer and check every RNNPool op against the contract.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from ..core import progress
from ..core.contract import contract
from ..core.errors import RNNPoolError
from ..runtime.native_output import captured_stderr_fd
from ..tflite import model as tfm
from .ir_fusion import FusionReport, fuse_inverted_residuals


@dataclasses.dataclass
class RNNPoolSite:
    """One RNNPool layer of the Keras model and where it sits in the split."""

    index: int
    layer: object  # the RNNPool layer
    wrapper: object  # its QuantizeWrapper (QAT) or None
    input_key: str  # builtin-model output that is the RNNPool's input
    output_key: str  # builtin-model input that is the RNNPool's output
    output_shape: tuple


@dataclasses.dataclass
class ConversionResult:
    tflite: bytes
    summary: tfm.ModelSummary
    nodes: List[tfm.RNNPoolNode]
    memory_plan: Optional[object] = None  # arena.offline_planner.MemoryPlan, None: TFLM plans online
    fusion: Optional[FusionReport] = None  # what the inverted-residual pass did (None: fuse=False)


class _Reuse:
    """A tensor_dict entry that can be popped any number of times (tf-keras Node.map_arguments)."""

    def __init__(self, tensor):
        self.tensor = tensor

    def pop(self):
        return self.tensor


def _keras():
    from ..core.keras import keras

    return keras


def _fake_quant_layer(min_var, max_var):
    """A layer applying the RNNPool wrapper's output fake-quant (same variables)."""
    import tensorflow as tf

    keras = _keras()

    class RNNPoolOutputRange(keras.layers.Layer):
        def call(self, x):
            return tf.quantization.fake_quant_with_min_max_vars(x, min_var, max_var, num_bits=8, narrow_range=False)

    return RNNPoolOutputRange()


def _unwrap(layer):
    from ..quantize.model import QuantizeWrapper

    return (layer.layer, layer) if isinstance(layer, QuantizeWrapper) else (layer, None)


def input_names(model) -> List[str]:
    return [t.name.split(":")[0] for t in model.inputs]


def split_builtin_part(model):
    """(builtin Keras model, [RNNPoolSite]) as described in the module docstring."""
    import tensorflow as tf

    from ..layer.rnnpool import RNNPool

    keras = _keras()
    if not getattr(model, "_is_graph_network", False):
        raise RNNPoolError(
            "only functional and Sequential Keras models can be converted (a subclassed model has no layer graph)"
        )
    qat = _is_qat(model)
    tensors: Dict[str, _Reuse] = {}
    inputs = []
    for x, name in zip(model.inputs, input_names(model)):
        new = keras.Input(x.shape[1:], dtype=x.dtype, name=name)
        inputs.append(new)
        tensors[str(id(x))] = _Reuse(new)
    outputs: Dict[str, object] = {}
    sites: List[RNNPoolSite] = []
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            inner, wrapper = _unwrap(node.layer)
            if isinstance(inner, keras.Model):
                raise RNNPoolError(f"nested model {inner.name!r}: flatten it before converting")
            if isinstance(inner, RNNPool):
                if len(inner._inbound_nodes) > 1:
                    raise RNNPoolError(
                        f"RNNPool layer {inner.name!r} is used {len(inner._inbound_nodes)} times; "
                        "each RNNPool layer must be called once"
                    )
                if qat and wrapper is None:
                    raise RNNPoolError(
                        f"RNNPool layer {inner.name!r} is not quantized in this QAT model; "
                        "annotate it too (quantize_annotate_layer)"
                    )
                k = len(sites)
                site = RNNPoolSite(
                    k, inner, wrapper, f"rnnpool_{k}_input", f"rnnpool_{k}_output", tuple(node.outputs.shape)
                )
                sites.append(site)
                outputs[site.input_key] = tensors[node.flat_input_ids[0]].pop()
                placeholder = keras.Input(site.output_shape[1:], name=site.output_key)
                inputs.append(placeholder)
                value = placeholder
                if wrapper is not None:
                    v = _output_range(wrapper).variables
                    value = _fake_quant_layer(v["min_var"], v["max_var"])(placeholder)
                tensors[node.flat_output_ids[0]] = _Reuse(value)
                continue
            args, kwargs = node.map_arguments(tensors)
            result = node.layer(*args, **kwargs)
            for x_id, y in zip(node.flat_output_ids, tf.nest.flatten(result)):
                tensors[x_id] = _Reuse(y)
    for i, x in enumerate(model.outputs):
        outputs[f"output_{i}"] = tensors[str(id(x))].pop()
    # Plain lists: the converter keeps their order (its output carries no signature to map names).
    keys = [f"output_{i}" for i in range(len(model.outputs))] + [s.input_key for s in sites]
    builtin = keras.Model(inputs, [outputs[k] for k in keys], name=f"{model.name}_builtin_part")
    builtin.rnnpool_output_keys = keys
    return builtin, sites


def _output_range(wrapper):
    from ..quantize.model import output_range

    fake_quant = output_range(wrapper)
    if fake_quant is None:
        raise RNNPoolError(
            f"RNNPool layer {wrapper.layer.name!r} has no output quantizer; quantize it with RNNPoolQuantizeConfig"
        )
    return fake_quant


def _is_qat(model) -> bool:
    from ..quantize.model import is_quantized_model

    return is_quantized_model(model)


# -- representative data ----------------------------------------------------------------------


def as_input_list(model, data) -> List[np.ndarray]:
    """Representative/check data -> one float32 array per model input, [N, ...] each.

    Accepts an array (single-input models), a list/tuple in input order, a dict keyed
    by input name, or an NpzFile/mapping (see load_npz_inputs)."""
    names = input_names(model)
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    if isinstance(data, dict) or hasattr(data, "files"):
        return select_inputs(data, names, shapes, "the data")
    arrays = [data] if isinstance(data, np.ndarray) else list(data)
    if len(arrays) != len(names):
        raise RNNPoolError(f"the model has {len(names)} inputs ({', '.join(names)}); got {len(arrays)} arrays")
    return [_check_shape(np.asarray(a), name, shape, "the data") for a, name, shape in zip(arrays, names, shapes)]


def select_inputs(store, names: Sequence[str], shapes: Sequence[tuple], source: str) -> List[np.ndarray]:
    """Arrays for the named inputs from a mapping/NpzFile: by input name, else (one input)
    the key 'x', else the only array that is not 'y'."""
    keys = list(store.files if hasattr(store, "files") else store.keys())
    if all(n in keys for n in names):
        chosen = list(names)
    elif len(names) == 1 and "x" in keys:
        chosen = ["x"]
    elif len(names) == 1 and len([k for k in keys if k != "y"]) == 1:
        chosen = [k for k in keys if k != "y"]
    else:
        raise RNNPoolError(
            f"{source} has arrays {keys}; expected one per model input named "
            f"{', '.join(names)}" + (" (or 'x')" if len(names) == 1 else "")
        )
    return [
        _check_shape(np.asarray(store[key]), f"{source} array {key!r}", shape, source)
        for key, shape in zip(chosen, shapes)
    ]


def _check_shape(a: np.ndarray, what: str, shape: tuple, source: str) -> np.ndarray:
    want = tuple(None if d is None else int(d) for d in shape)
    if a.ndim == len(want):
        a = a[None]
    if a.ndim != len(want) + 1 or any(w is not None and w != g for w, g in zip(want, a.shape[1:])):
        raise RNNPoolError(
            f"data of the wrong shape: {what} has shape {list(a.shape)}, the model input "
            f"expects [N, {', '.join(str(d) for d in want)}]"
        )
    if a.shape[0] == 0:
        raise RNNPoolError(f"{what} holds no samples")
    if not np.issubdtype(a.dtype, np.number):
        raise RNNPoolError(f"{what} has dtype {a.dtype}; expected numbers")
    return a.astype(np.float32)


@dataclasses.dataclass
class Calibration:
    """Representative data for a float model: the model inputs and every RNNPool's output."""

    inputs: List[np.ndarray]
    rnnpool_outputs: List[np.ndarray]

    def ranges(self, model) -> Dict[str, tuple]:
        names = input_names(model) + [f"rnnpool_{k}_output" for k in range(len(self.rnnpool_outputs))]
        arrays = self.inputs + self.rnnpool_outputs
        return {n: (float(a.min()), float(a.max())) for n, a in zip(names, arrays)}

    def generator(self, model, builtin):
        names = input_names(model)
        count = self.inputs[0].shape[0]

        def generate() -> Iterator[Dict[str, np.ndarray]]:
            for i in range(count):
                sample = {name: a[i : i + 1] for name, a in zip(names, self.inputs)}
                sample.update({f"rnnpool_{k}_output": o[i : i + 1] for k, o in enumerate(self.rnnpool_outputs)})
                yield {k: sample[k] for k in builtin_input_order(builtin)}

        return generate


def calibrate(model, data: List[np.ndarray], limit: int = 256) -> Calibration:
    """Runs the float model on (up to `limit` samples of) the data, keeping RNNPool outputs."""
    from ..layer.rnnpool import find_rnnpool_layers

    keras = _keras()
    layers = find_rnnpool_layers(model)
    data = [d[:limit] for d in data]
    if not layers:  # a model without RNNPool: the converter calibrates everything itself
        return Calibration(data, [])
    probe = keras.Model(model.inputs, [layer.get_output_at(0) for layer in layers])
    out = probe.predict(data if len(data) > 1 else data[0], batch_size=32, verbose=0)
    out = [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]
    return Calibration(data, out)


def builtin_input_order(builtin) -> List[str]:
    return [t.name.split(":")[0] for t in builtin.inputs]


# -- TFLite conversion of the builtin part -----------------------------------------------------


def _convert_builtin(builtin, representative=None) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(builtin)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if representative is not None:  # post-training: insist on int8 kernels (QAT: check_int8 checks after)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if representative is not None:
        converter.representative_dataset = representative
    try:
        # Warnings "Statistics for quantized inputs were expected": the ranges come from the fake-quants /
        # calibration, not from input statistics. The calibrator prints its settings on fd 2.
        with warnings.catch_warnings(), captured_stderr_fd():
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    except Exception as exc:  # the converter's errors are long; keep the first lines
        text = " ".join(str(exc).split())[:600]
        raise RNNPoolError(f"the TFLite converter failed on the builtin part of the model: {text}") from None


# -- splicing ------------------------------------------------------------------------------------


def _io_maps(m: tfm.schema.ModelT, builtin):
    """{builtin input name: tensor}, {output key: tensor}. With a signature (the
    calibrating path writes one) by name, otherwise in the Keras model's order (which
    the fake-quant path keeps); every shape is checked either way."""
    sg = m.subgraphs[0]
    in_names = builtin_input_order(builtin)
    keys = builtin.rnnpool_output_keys
    if len(sg.inputs) != len(in_names) or len(sg.outputs) != len(keys):
        raise RNNPoolError(
            f"the converted builtin part has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs, "
            f"expected {len(in_names)} and {len(keys)}"
        )
    in_idx, out_idx = [int(i) for i in sg.inputs], [int(i) for i in sg.outputs]
    if m.signatureDefs:
        sig = m.signatureDefs[0]
        by_name = lambda maps: {tfm._text(e.name): int(e.tensorIndex) for e in maps or []}  # noqa: E731
        sig_in, sig_out = by_name(sig.inputs), by_name(sig.outputs)
        names_out = list(builtin.output_names)
        if set(sig_in) != set(in_names) or set(sig_out) != set(names_out):
            raise RNNPoolError(
                f"the converted builtin part's signature {sorted(sig_in)} -> {sorted(sig_out)} does "
                f"not name the expected tensors {in_names} -> {names_out}"
            )
        in_idx = [sig_in[n] for n in in_names]
        out_idx = [sig_out[n] for n in names_out]
    for kind, idxs, tensors in (("input", in_idx, builtin.inputs), ("output", out_idx, builtin.outputs)):
        for idx, t in zip(idxs, tensors):
            want = tuple(1 if d is None else int(d) for d in t.shape)
            if tfm.tensor_shape(sg.tensors[idx]) != want:
                raise RNNPoolError(
                    f"converted builtin part: {kind} {tfm.tensor_label(sg, idx)} has shape "
                    f"{list(tfm.tensor_shape(sg.tensors[idx]))}, expected {list(want)}"
                )
    return dict(zip(in_names, in_idx)), dict(zip(keys, out_idx))


def _quantized_params(site: RNNPoolSite, x_tensor, y_tensor):
    from ..reference.quant_params import quantize_rnnpool

    s_x, zp_x = tfm.per_tensor(x_tensor, f"input of RNNPool {site.layer.name!r}")
    s_y, zp_y = tfm.per_tensor(y_tensor, f"output of RNNPool {site.layer.name!r}")
    return quantize_rnnpool(
        site.layer.get_rnnpool_weights(),
        site.layer.rnnpool_config,
        float(s_x),
        zp_x,
        float(s_y),
        zp_y,
        per_channel=True,
    )


def _add_rnnpool_op(m: tfm.schema.ModelT, site: RNNPoolSite, x_idx: int, y_idx: int) -> None:
    sg = m.subgraphs[0]
    if sg.tensors[x_idx].type != tfm.TensorType.INT8 or sg.tensors[y_idx].type != tfm.TensorType.INT8:
        raise RNNPoolError(f"RNNPool {site.layer.name!r}: the converter did not make its input/output int8")
    params = _quantized_params(site, sg.tensors[x_idx], sg.tensors[y_idx])
    c = contract()
    names = [spec.name for spec in c.inputs[1:]]
    weights = tfm.weight_tensor_arrays(params)
    assert [w[0] for w in weights] == names, "weight order differs from the contract"
    op_inputs = [x_idx]
    for name, tensor_type, data, scales in weights:
        zero = np.zeros(np.size(scales), np.int64)
        op_inputs.append(
            tfm.add_tensor(
                m,
                sg,
                f"{site.layer.name}/{name}",
                tensor_type,
                data.shape,
                data,
                scale=scales,
                zero_point=zero,
                quantized_dimension=0,
            )
        )
    op = tfm.schema.OperatorT()
    op.opcodeIndex = tfm.opcode_index(m, tfm.BuiltinOperator.CUSTOM, c.custom_code, c.version)
    op.inputs, op.outputs = op_inputs, [y_idx]
    op.customOptions = np.frombuffer(tfm.encode_options(site.layer.rnnpool_config), np.uint8)
    op.customOptionsFormat = tfm.schema.CustomOptionsFormat.FLEXBUFFERS
    op.builtinOptionsType = 0
    sg.operators.append(op)
    sg.tensors[y_idx].name = site.layer.name
    sg.tensors[y_idx].shapeSignature = None


def _add_float_io(m: tfm.schema.ModelT) -> None:
    """QUANTIZE at every graph input, DEQUANTIZE at every output: float32 I/O."""
    sg = m.subgraphs[0]

    def float_twin(idx: int, opcode: int, is_input: bool):
        """A float32 tensor taking over the I/O tensor's name, and the op converting between them."""
        t = sg.tensors[idx]
        f_idx = tfm.add_tensor(m, sg, tfm._text(t.name), tfm.TensorType.FLOAT32, tfm.tensor_shape(t))
        t.name = f"{tfm._text(t.name)}_int8"
        op = tfm.schema.OperatorT()
        op.opcodeIndex = tfm.opcode_index(m, opcode)
        op.inputs, op.outputs = ([f_idx], [idx]) if is_input else ([idx], [f_idx])
        return f_idx, op

    front = [float_twin(idx, tfm.BuiltinOperator.QUANTIZE, True) for idx in sg.inputs]
    back = [float_twin(idx, tfm.BuiltinOperator.DEQUANTIZE, False) for idx in sg.outputs]
    new_inputs, new_outputs = [f for f, _ in front], [f for f, _ in back]
    sg.operators = [op for _, op in front] + list(sg.operators) + [op for _, op in back]
    remap = dict(zip(list(sg.inputs) + list(sg.outputs), new_inputs + new_outputs))
    for sig in m.signatureDefs or []:
        for entry in list(sig.inputs or []) + list(sig.outputs or []):
            entry.tensorIndex = remap.get(entry.tensorIndex, entry.tensorIndex)
    sg.inputs, sg.outputs = new_inputs, new_outputs


def _quantize_untouched_inputs(m: tfm.schema.ModelT, ins: Dict[str, int], ranges: Dict[str, tuple]) -> None:
    """A builtin input that no builtin op reads or writes (an RNNPool fed by the model
    input or by another RNNPool, an RNNPool output that is a model output) passes the
    converter as a float tensor without quantization. Give it the int8 grid the
    converter would have given its calibrated range."""
    from ..quantize.model import tflite_grid

    sg = m.subgraphs[0]
    touched = {int(t) for op in sg.operators for t in list(op.inputs) + list(op.outputs) if t >= 0}
    for name, idx in ins.items():
        t = sg.tensors[idx]
        if t.type != tfm.TensorType.FLOAT32 or idx in touched or name not in ranges:
            continue
        scale, zero_point = tflite_grid(*ranges[name])
        q = tfm.schema.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = [float(scale)], [int(zero_point)], 0
        t.type, t.quantization = tfm.TensorType.INT8, q


def splice(
    builtin_bytes: bytes,
    builtin,
    model,
    sites: List[RNNPoolSite],
    float_io: bool,
    ranges: Optional[Dict[str, tuple]] = None,
) -> bytes:
    m = tfm.read_model(builtin_bytes, "converted builtin part")
    ins, outs = _io_maps(m, builtin)
    sg = m.subgraphs[0]
    if ranges:
        _quantize_untouched_inputs(m, ins, ranges)
    for site in sites:
        missing = [k for k, table in ((site.input_key, outs), (site.output_key, ins)) if k not in table]
        if missing:
            raise RNNPoolError(f"the converted builtin part lacks {missing} for RNNPool {site.layer.name!r}")
        _add_rnnpool_op(m, site, outs[site.input_key], ins[site.output_key])
    model_inputs = [ins[name] for name in input_names(model)]
    model_outputs = [outs[f"output_{i}"] for i in range(len(model.outputs))]
    sg.inputs, sg.outputs = model_inputs, model_outputs
    for idx, name in zip(model_inputs + model_outputs, input_names(model) + _output_names(model)):
        sg.tensors[idx].name = name
    sg.operators = [sg.operators[i] for i in tfm.topological_order(sg)]
    sig = tfm.schema.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = "serving_default", 0
    sig.inputs = [_tensor_map(name, idx) for name, idx in zip(input_names(model), model_inputs)]
    sig.outputs = [_tensor_map(name, idx) for name, idx in zip(_output_names(model), model_outputs)]
    m.signatureDefs = [sig]
    for idx in model_inputs + model_outputs:
        if sg.tensors[idx].type != tfm.TensorType.INT8:
            raise RNNPoolError(
                f"graph I/O tensor {tfm.tensor_label(sg, idx)} is {tfm.type_name(sg.tensors[idx].type)}, expected INT8"
            )
    if float_io:
        _add_float_io(m)
    tfm.remove_unused(m)
    return tfm.write_model(m)


def _tensor_map(name: str, idx: int):
    entry = tfm.schema.TensorMapT()
    entry.name, entry.tensorIndex = name, idx
    return entry


def _output_names(model) -> List[str]:
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == len(model.outputs) else [f"output_{i}" for i in range(len(model.outputs))]


# -- checks of the result ---------------------------------------------------------------------------

_FLOAT_IO_OPS = {"QUANTIZE", "DEQUANTIZE"}


def check_int8(m: tfm.schema.ModelT, float_io: bool) -> None:
    """Every builtin op works on int8 (float only at QUANTIZE/DEQUANTIZE of float I/O)."""
    sg = m.subgraphs[0]
    for o_idx, op in enumerate(sg.operators):
        name = tfm.opcode_name(m, op.opcodeIndex)
        if float_io and name in _FLOAT_IO_OPS:
            continue
        for t_idx in list(op.inputs) + list(op.outputs):
            if t_idx >= 0 and sg.tensors[t_idx].type == tfm.TensorType.FLOAT32:
                raise RNNPoolError(
                    f"op #{o_idx} {name} has float tensor {tfm.tensor_label(sg, t_idx)}: "
                    "part of the model was not quantized to int8"
                )


def representative_hint(model) -> str:
    """What --representative must hold for `model`: one array per input, named, with its shape."""
    parts = [
        f"{name!r} [N, {', '.join(str(d) for d in t.shape[1:])}]"
        for name, t in zip(input_names(model), model.inputs, strict=True)
    ]
    if len(parts) == 1:
        return f"an array {parts[0]} (or named 'x') of typical inputs"
    return "arrays " + ", ".join(parts) + " of typical inputs"


def convert_model(
    model,
    representative_data=None,
    float_io: bool = False,
    fuse: bool = True,
    rnn1_mode: str = "cached",
    memory_plan: str = "offline",
) -> ConversionResult:
    """The conversion with its validated summary (see `convert` for the arguments)."""
    from ..quantize.model import load_model

    if not hasattr(model, "layers"):
        model = load_model(model)
    qat = _is_qat(model)
    if not qat and representative_data is None:
        raise RNNPoolError(
            "a float model needs representative data for post-training quantization: "
            f"--representative FILE.npz with {representative_hint(model)}; or quantize it "
            "with QAT first"
        )
    names = (
        ([] if qat else ["calibrate"])
        + ["split", "TFLite converter", "RNNPool ops"]
        + (["fuse"] if fuse else [])
        + ["memory plan", "validate"]
    )
    from .memory_plan import MODES, apply_memory_plan

    if memory_plan not in MODES:
        raise RNNPoolError(f"memory_plan must be one of {', '.join(MODES)}, got {memory_plan!r}")
    with progress.steps("convert", names) as step:
        representative = calibration = None
        if not qat:
            step("calibrate")
            calibration = calibrate(model, as_input_list(model, representative_data))
        step("split")
        builtin, sites = split_builtin_part(model)
        if calibration is not None:
            representative = calibration.generator(model, builtin)
        step("TFLite converter")
        builtin_bytes = _convert_builtin(builtin, representative)
        step("RNNPool ops")
        tflite = splice(
            builtin_bytes, builtin, model, sites, float_io, calibration.ranges(model) if calibration else None
        )
        fusion = None
        if fuse:
            from .pad_fold import fold_replicate_pads

            step("fuse")
            tflite, _ = fold_replicate_pads(tflite)
            tflite, fusion = fuse_inverted_residuals(tflite)
        if rnn1_mode != "cached":
            tflite = tfm.set_rnn1_mode(tflite, rnn1_mode)
        step("memory plan")  # last: the plan is for the final tensor list and scratch sizes
        tflite, plan = apply_memory_plan(tflite, memory_plan)
        step("validate")
        m = tfm.read_model(tflite, "converted model")
        nodes = tfm.validate_model(m, "converted model")
        if len(nodes) != len(sites):
            raise RNNPoolError(f"the converted model has {len(nodes)} RNNPool ops, the Keras model {len(sites)} layers")
        check_int8(m, float_io)
    return ConversionResult(tflite, tfm.summarize(m, len(tflite)), nodes, plan, fusion)


def convert(
    model,
    representative_data=None,
    float_io: bool = False,
    fuse: bool = True,
    rnn1_mode: str = "cached",
    memory_plan: str = "offline",
) -> bytes:
    """An int8 .tflite (bytes) of `model` (a Keras model or a path to .keras/.h5/SavedModel).

    QAT models take every range from their fake-quants (representative data is not
    used); a float model needs `representative_data` (an array, list or dict of arrays, or an NpzFile).
    `float_io`: float32 input/output through QUANTIZE/DEQUANTIZE; else int8.
    `fuse`: fold op chains into the custom ops where the result is byte-identical (step 4
    of the module docstring); False keeps the plain graph.
    `rnn1_mode`: every RNNPool op's rnn1_mode, "cached" (fewest instructions) or "recompute"
    (about a kilobyte of scratch instead of tens); tflite.model.set_rnn1_mode changes it per op later.
    `memory_plan`: "offline" writes TFLM an offline memory plan (OfflineMemoryAllocation metadata,
    convert/memory_plan.py) when it needs less arena than TFLM's greedy planner; "greedy" writes none."""
    return convert_model(model, representative_data, float_io, fuse, rnn1_mode, memory_plan).tflite
