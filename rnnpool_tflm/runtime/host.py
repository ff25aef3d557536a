"""Runs a .tflite with RNNPool ops on the host: TFLM's interpreter (tflite-micro wheel)
plus the RNNPool kernel, in one of two ways (InvertedResidual ops alike, with their kernel).

* "partitioned" (always available): the model is cut at every RNNPool op into
  builtin segments, each a valid .tflite run in the tflite-micro interpreter; the
  RNNPool ops run in the C kernel (rnnpool_tflm.runtime.native) with the parameters the
  model stores.
* "registered" (TFLM_DIR set): the whole model in the tflite-micro interpreter with
  the RNNPool op registered through rnnpool_tflm.runtime.registerer.

Both return the model outputs and, for every RNNPool op, the int8 tensors it read
and wrote, so a caller can check each op against the golden reference.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Sequence

import numpy as np

from ..core.errors import RNNPoolError
from ..tflite import model as tfm
from .interpreter import default_arena_size, open_interpreter

MODES = ("auto", "partitioned", "registered")


@dataclasses.dataclass
class RNNPoolTrace:
    """The int8 input and output of one RNNPool op over all samples ([N, ...] each)."""

    node: tfm.RNNPoolNode
    inputs: np.ndarray
    outputs: np.ndarray


@dataclasses.dataclass
class RunResult:
    outputs: List[np.ndarray]  # one array per model output, [N, ...], in the model's dtype
    rnnpool: List[RNNPoolTrace]
    mode: str


# -- the two ways of running an RNNPool op and the registerer (one function each) ----------------


def rnnpool_kernel(params, input_shape):
    """A callable int8 NHWC -> int8 running the C kernel (rnnpool_tflm.runtime.native), prepared once."""
    from . import native

    return native.PreparedS8(params, input_shape)


def registerer_name() -> str:
    """The RNNPool op's registerer for the tflite-micro interpreter (built against $TFLM_DIR)."""
    from . import registerer as tflm_registerer

    return tflm_registerer.load()


def registerer_names() -> List[str]:
    """Every custom op's registerer (RNNPool, InvertedResidual), from the same library."""
    from . import registerer as tflm_registerer

    return tflm_registerer.load_all()


def inverted_residual_kernel(params, input_shape):
    """A callable int8 NHWC -> int8 running the InvertedResidual C kernel, prepared once."""
    from .invres_native import PreparedInvertedResidual

    return PreparedInvertedResidual(params, input_shape)


def registered_available() -> bool:
    if not os.environ.get("TFLM_DIR"):
        return False
    try:
        from . import registerer as tflm_registerer
    except ImportError:
        return False
    return tflm_registerer.available()


# -- the tflite-micro interpreter ---------------------------------------------------------------------


def _interpreter(model: bytes, registerers: Sequence[str] = (), preserve: bool = False, arena_size: int = 0):
    if preserve:
        # Keeping every tensor apart contradicts an offline plan's reuse, and TFLM's
        # preserve-all-tensors planner rejects one: the plan goes, the outputs stay the same.
        from ..tflite import offline_plan

        if offline_plan.read_plan(tfm.read_model(model)) is not None:
            model = offline_plan.write_with_plan(model, None)
    try:
        return open_interpreter(
            model,
            arena_size or default_arena_size(model),
            registerers,
            preserve_all_tensors=preserve,
            isolate_prepare=True,
        )
    except RuntimeError as exc:
        raise RNNPoolError(f"the tflite-micro interpreter rejected the model: {exc}") from None


def _tensor_value(interpreter, index: int, shape) -> np.ndarray:
    """A tensor's data after invoke (needs kPreserveAllTensors); GetTensor returns a dict."""
    found = interpreter.GetTensor(index, 0)
    data = found["tensor_data"] if isinstance(found, dict) else found
    return np.array(data).reshape(shape)


def _set_inputs(interpreter, arrays: Sequence[np.ndarray], sample: int) -> None:
    for i, a in enumerate(arrays):
        interpreter.set_input(np.ascontiguousarray(a[sample : sample + 1]), i)


# -- partitioning ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Segment:
    model: bytes
    inputs: List[int]  # tensor indices of the full model
    outputs: List[int]
    interpreter: object = None


def _tensor_is_constant(m, tensor) -> bool:
    return tfm.constant_data(m, tensor) is not None


def _segment_model(m: tfm.schema.ModelT, op_indices: List[int], needed_later: set) -> _Segment:
    """A .tflite holding the given operators of subgraph 0, with the tensors they
    read from outside as inputs and the ones read later (or graph outputs) as outputs."""
    sg = m.subgraphs[0]
    ops = [sg.operators[i] for i in op_indices]
    produced = {int(t) for op in ops for t in op.outputs if t >= 0}
    used = []
    for op in ops:
        for t in list(op.inputs) + list(op.outputs) + list(op.intermediates if op.intermediates is not None else []):
            if t >= 0 and int(t) not in used:
                used.append(int(t))
    inputs = [t for t in used if t not in produced and not _tensor_is_constant(m, sg.tensors[t])]
    outputs = [t for t in used if t in produced and t in needed_later]
    remap = {old: new for new, old in enumerate(used)}
    seg = tfm.schema.ModelT()
    seg.version = m.version
    seg.description = "rnnpool-tflm host segment"
    seg.operatorCodes = m.operatorCodes
    seg.buffers = [tfm.schema.BufferT()]
    sub = tfm.schema.SubGraphT()
    sub.tensors, sub.operators = [], []
    for old in used:
        t = sg.tensors[old]
        copy = tfm.schema.TensorT()
        for field in (
            "name",
            "type",
            "shape",
            "quantization",
            "isVariable",
            "sparsity",
            "shapeSignature",
            "hasRank",
            "variantTensors",
        ):
            if hasattr(t, field):
                setattr(copy, field, getattr(t, field))
        copy.buffer = 0
        data = m.buffers[t.buffer].data if t.buffer else None
        if data is not None and len(data):
            seg.buffers.append(m.buffers[t.buffer])
            copy.buffer = len(seg.buffers) - 1
        sub.tensors.append(copy)
    for op in ops:
        new = tfm.schema.OperatorT()
        for field in vars(op):
            setattr(new, field, getattr(op, field))
        new.inputs = [remap[int(t)] if t >= 0 else -1 for t in op.inputs]
        new.outputs = [remap[int(t)] if t >= 0 else -1 for t in op.outputs]
        if op.intermediates is not None:
            new.intermediates = [remap[int(t)] for t in op.intermediates]
        sub.operators.append(new)
    sub.inputs = [remap[t] for t in inputs]
    sub.outputs = [remap[t] for t in outputs]
    seg.subgraphs = [sub]
    return _Segment(tfm.write_model(seg), inputs, outputs)


class HostModel:
    """A .tflite prepared for repeated runs on the host."""

    def __init__(self, model, mode: str = "auto", arena_size: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.data = tfm.load_bytes(model)
        self.model = tfm.read_model(self.data, model if isinstance(model, (str, os.PathLike)) else "model")
        self.nodes = tfm.validate_model(self.model, "model")
        if len(self.model.subgraphs) != 1:
            raise RNNPoolError(f"the model has {len(self.model.subgraphs)} subgraphs; only one is supported")
        if mode == "auto":
            mode = "registered" if registered_available() else "partitioned"
        self.mode = mode
        self.arena_size = arena_size
        sg = self.model.subgraphs[0]
        self.input_details = [self._details(i) for i in sg.inputs]
        self.output_details = [self._details(i) for i in sg.outputs]
        if mode == "partitioned":
            self._plan_partitions()
        else:
            self._interp = _interpreter(self.data, registerer_names(), preserve=True, arena_size=arena_size)

    def _details(self, idx: int) -> dict:
        t = self.model.subgraphs[0].tensors[idx]
        scales, zps, _ = tfm.quantization(t)
        dtype = tfm.NUMPY_TYPES.get(t.type)
        if dtype is None:
            raise RNNPoolError(
                f"graph I/O tensor {tfm.tensor_label(self.model.subgraphs[0], idx)} has unsupported "
                f"type {tfm.type_name(t.type)}"
            )
        return {
            "index": idx,
            "name": tfm._text(t.name),
            "shape": tfm.tensor_shape(t),
            "dtype": np.dtype(dtype),
            "scale": float(scales[0]) if scales.size == 1 else None,
            "zero_point": int(zps[0]) if zps.size == 1 else None,
        }

    # -- partitioned ---------------------------------------------------------------------------------------
    def _plan_partitions(self) -> None:
        from ..tflite import inverted_residual_op as irop

        m, sg = self.model, self.model.subgraphs[0]
        rnn_ops = {n.op_index: n for n in self.nodes}
        self._kernels = {n.op_index: rnnpool_kernel(n.params, n.input_shape) for n in self.nodes}
        # InvertedResidual ops run in their C kernel too: (input tensor, output tensor, kernel).
        self._fused = {}
        for o_idx, op in enumerate(sg.operators):
            if irop.is_inverted_residual(m, op):
                node = irop.decode(m, 0, o_idx)
                self._fused[o_idx] = (
                    node.input_tensor,
                    node.output_tensor,
                    inverted_residual_kernel(node.params, (1, *node.input_shape[1:])),
                )
        native_ops = set(rnn_ops) | set(self._fused)
        steps: List[List[int]] = []
        for o_idx in range(len(sg.operators)):
            if o_idx in native_ops:
                steps.append([o_idx])
            elif steps and steps[-1][0] not in native_ops:
                steps[-1].append(o_idx)
            else:
                steps.append([o_idx])
        self._steps = []
        for s_idx, step in enumerate(steps):
            if step[0] in rnn_ops:
                self._steps.append(("rnnpool", rnn_ops[step[0]]))
                continue
            if step[0] in self._fused:
                self._steps.append(("fused", self._fused[step[0]]))
                continue
            later = set(int(t) for t in sg.outputs)
            for other in steps[s_idx + 1 :]:
                for o in other:
                    later |= {int(t) for t in sg.operators[o].inputs if t >= 0}
            seg = _segment_model(m, step, later)
            seg.interpreter = _interpreter(seg.model, arena_size=self.arena_size)
            self._steps.append(("segment", seg))

    def _run_partitioned(self, inputs: List[np.ndarray]) -> RunResult:
        sg = self.model.subgraphs[0]
        n = inputs[0].shape[0]
        values: Dict[int, List[np.ndarray]] = {
            int(idx): [a[i : i + 1] for i in range(n)] for idx, a in zip(sg.inputs, inputs)
        }
        traces = []
        for kind, step in self._steps:
            if kind == "rnnpool":
                node, kernel = step, self._kernels[step.op_index]
                xs = values[node.input_tensor]
                ys = [kernel(x) for x in xs]
                values[node.output_tensor] = ys
                traces.append(RNNPoolTrace(node, np.concatenate(xs), np.concatenate(ys)))
                continue
            if kind == "fused":
                source, target, kernel = step
                values[target] = [kernel(x) for x in values[source]]
                continue
            seg = step
            outs = {t: [] for t in seg.outputs}
            for i in range(n):
                for j, t in enumerate(seg.inputs):
                    seg.interpreter.set_input(np.ascontiguousarray(values[t][i]), j)
                seg.interpreter.invoke()
                for j, t in enumerate(seg.outputs):
                    outs[t].append(np.array(seg.interpreter.get_output(j)))
            values.update(outs)
        outputs = [np.concatenate(values[int(idx)]) for idx in sg.outputs]
        return RunResult(outputs, traces, "partitioned")

    # -- registered ----------------------------------------------------------------------------------------
    def _run_registered(self, inputs: List[np.ndarray]) -> RunResult:
        sg = self.model.subgraphs[0]
        n = inputs[0].shape[0]
        outs = [[] for _ in sg.outputs]
        xs = {node.op_index: [] for node in self.nodes}
        ys = {node.op_index: [] for node in self.nodes}
        for i in range(n):
            _set_inputs(self._interp, inputs, i)
            self._interp.invoke()
            for j in range(len(sg.outputs)):
                outs[j].append(np.array(self._interp.get_output(j)))
            for node in self.nodes:
                xs[node.op_index].append(_tensor_value(self._interp, node.input_tensor, node.input_shape))
                ys[node.op_index].append(_tensor_value(self._interp, node.output_tensor, node.output_shape))
        traces = [
            RNNPoolTrace(node, np.concatenate(xs[node.op_index]), np.concatenate(ys[node.op_index]))
            for node in self.nodes
        ]
        return RunResult([np.concatenate(o) for o in outs], traces, "registered")

    # -- public ----------------------------------------------------------------------------------------------
    def check_inputs(self, inputs) -> List[np.ndarray]:
        """One array per model input, [N, ...] in the input's dtype; clear errors otherwise."""
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(self.input_details):
            raise RNNPoolError(f"the model has {len(self.input_details)} inputs, got {len(arrays)} arrays")
        result = []
        for a, d in zip(arrays, self.input_details):
            a = np.asarray(a)
            want = d["shape"][1:]
            if a.ndim != len(d["shape"]) or tuple(a.shape[1:]) != want:
                raise RNNPoolError(
                    f"data of the wrong shape: input {d['name']!r} expects [N, "
                    f"{', '.join(map(str, want))}], got {list(a.shape)}"
                )
            if a.dtype != d["dtype"]:
                raise RNNPoolError(f"input {d['name']!r} is {d['dtype']}, got {a.dtype} data")
            result.append(np.ascontiguousarray(a))
        return result

    def run(self, inputs) -> RunResult:
        arrays = self.check_inputs(inputs)
        if self.mode == "partitioned":
            return self._run_partitioned(arrays)
        return self._run_registered(arrays)


def run(model, inputs, mode: str = "auto") -> RunResult:
    """One-shot: HostModel(model, mode).run(inputs)."""
    return HostModel(model, mode).run(inputs)


def quantize_inputs(details: dict, x: np.ndarray) -> np.ndarray:
    """Float data -> the model input's dtype (int8: round(x / s) + zp, saturated)."""
    if details["dtype"] == np.float32:
        return x.astype(np.float32)
    if details["scale"] is None:
        raise RNNPoolError(f"input {details['name']!r} has no per-tensor quantization")
    from ..reference.quant_params import round_half_away  # TFLite's QUANTIZE rounds half away from zero

    info = np.iinfo(details["dtype"])
    q = round_half_away(x.astype(np.float64) / np.float32(details["scale"])) + details["zero_point"]
    return np.clip(q, info.min, info.max).astype(details["dtype"])


def output_sha256(outputs: Sequence[np.ndarray]) -> str:
    """SHA-256 (hex) of the output tensors' bytes, one after the other in the model's output
    order (C order, the model's dtypes): equal digests, equal output bytes, whichever model or
    machine produced them."""
    import hashlib

    digest = hashlib.sha256()
    for y in outputs:
        digest.update(np.ascontiguousarray(y).tobytes())
    return digest.hexdigest()


def dequantize_outputs(details: dict, y: np.ndarray) -> np.ndarray:
    if details["dtype"] == np.float32:
        return y.astype(np.float32)
    return ((y.astype(np.float64) - details["zero_point"]) * details["scale"]).astype(np.float32)


__all__ = [
    "HostModel",
    "RunResult",
    "RNNPoolTrace",
    "run",
    "quantize_inputs",
    "dequantize_outputs",
    "output_sha256",
    "rnnpool_kernel",
    "inverted_residual_kernel",
    "registerer_name",
    "registerer_names",
    "registered_available",
    "MODES",
]
