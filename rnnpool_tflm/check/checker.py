"""`rnnpool-tflm check`: is a converted model right, and does it fit the board?

1. Runs the .tflite on the host (host_runtime: tflite-micro interpreter + RNNPool
   kernel) on the given data or on generated inputs.
2. Every RNNPool op: its int8 output equals the golden integer reference
   (reference.rnnpool_int8) on the input it actually read, bit for bit.
3. With the Keras (QAT) model: parity of the outputs -- max abs error in output
   LSBs, RMSE, cosine similarity, top-1 agreement (and accuracies when the data
   has labels).
4. Tensor arena on the Cortex-M4 target (measured on the emulated M4 when TFLM
   sources are available, otherwise the toolkit's estimate), model bytes, and the
   verdict for a board: deploy/fit.py's, the one `export` refuses a model by.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import List, Optional, Sequence

import numpy as np

from ..core.errors import RNNPoolError
from ..runtime import host as host_runtime
from ..tflite import model as tfm

DEFAULT_MIN_TOP1 = 0.99
DEFAULT_MAX_LSB = 2
DEFAULT_SAMPLES = 64


@dataclasses.dataclass
class CheckReport:
    samples: int
    mode: str  # host runtime used: partitioned / registered
    rnnpool_bitexact: bool
    rnnpool_mismatches: List[int]  # per op: elements differing from the golden reference
    output_sha256: str = ""  # of the host outputs' bytes (runtime.host.output_sha256)
    top1_agreement: Optional[float] = None
    max_abs_err_lsb: Optional[int] = None
    rmse: Optional[float] = None
    cosine: Optional[float] = None
    tflite_accuracy: Optional[float] = None
    keras_accuracy: Optional[float] = None
    arena_bytes: Optional[int] = None
    arena_exact: Optional[bool] = None
    arena_label: Optional[str] = None
    arena_greedy_bytes: Optional[int] = None  # offline-planned model: the estimate under TFLM's greedy plan
    model_bytes: int = 0
    board: Optional[str] = None
    fits: Optional[bool] = None
    verdict: Optional[str] = None
    fit: Optional[dict] = None  # deploy/fit.py's verdict in full (arena with margin, firmware)
    failures: List[str] = dataclasses.field(default_factory=list)

    def as_json(self) -> dict:
        keys = (
            "top1_agreement",
            "max_abs_err_lsb",
            "rmse",
            "cosine",
            "rnnpool_bitexact",
            "arena_bytes",
            "arena_exact",
            "model_bytes",
            "board",
            "fits",
        )
        extra = (
            "samples",
            "mode",
            "output_sha256",
            "rnnpool_mismatches",
            "tflite_accuracy",
            "keras_accuracy",
            "arena_label",
            "arena_greedy_bytes",
            "verdict",
            "fit",
            "failures",
        )
        return {k: getattr(self, k) for k in keys + extra}

    @property
    def ok(self) -> bool:
        return not self.failures

    def format(self) -> str:
        lines = [
            f"host run: {self.samples} samples, RNNPool ops {self.mode} "
            f"({'partitioned: C kernel between tflite-micro segments' if self.mode == 'partitioned' else 'registered in tflite-micro'})",
            f"RNNPool ops vs golden reference: {'bit-exact' if self.rnnpool_bitexact else 'MISMATCH'} "
            f"({', '.join(str(m) for m in self.rnnpool_mismatches)} differing elements per op)",
        ]
        lines.append(f"output bytes ({self.samples} samples) SHA-256: {self.output_sha256}")
        if self.top1_agreement is not None:
            lines.append(
                f"parity with Keras: top-1 agreement {self.top1_agreement:.2%}, max abs error "
                f"{self.max_abs_err_lsb} LSB, RMSE {self.rmse:.6g}, cosine {self.cosine:.6f}"
            )
        if self.tflite_accuracy is not None:
            keras = f", Keras {self.keras_accuracy:.2%}" if self.keras_accuracy is not None else ""
            lines.append(f"accuracy on the labels: int8 model {self.tflite_accuracy:.2%}{keras}")
        if self.arena_bytes is not None:
            lines.append(f"tensor arena (Cortex-M4, {self.arena_label}): {self.arena_bytes:,} B")
            if self.arena_greedy_bytes is not None:
                lines.append(
                    f"  offline memory plan; TFLM's greedy plan would need {self.arena_greedy_bytes:,} B (estimate)"
                )
        lines.append(f"model (flash): {self.model_bytes:,} B")
        if self.verdict:
            lines.append(self.verdict)
        lines.append("check passed" if self.ok else "check FAILED: " + "; ".join(self.failures))
        return "\n".join(lines)


# -- inputs ------------------------------------------------------------------------------------------


def load_data(path, input_details: Sequence[dict]):
    """(float inputs per model input, labels or None) from an .npz file."""
    from ..convert.keras_converter import select_inputs
    from ..core.files import load_arrays

    path = pathlib.Path(path)
    store = load_arrays(path, "data file")
    if not isinstance(store, dict):
        store = {"x": store}
    names = [d["name"] for d in input_details]
    shapes = [d["shape"][1:] for d in input_details]
    inputs = select_inputs(store, names, shapes, str(path))
    labels = None
    if "y" in store:
        labels = np.asarray(store["y"])
        if labels.shape[0] != inputs[0].shape[0]:
            raise RNNPoolError(f"{path}: 'y' has {labels.shape[0]} labels for {inputs[0].shape[0]} samples")
    return inputs, labels


def generated_inputs(input_details: Sequence[dict], samples: int, seed: int = 0) -> List[np.ndarray]:
    """Uniform random float inputs covering each input's quantized range."""
    rng = np.random.default_rng(seed)
    result = []
    for d in input_details:
        scale, zp = d["scale"], d["zero_point"]
        lo, hi = ((-128 - zp) * scale, (127 - zp) * scale) if scale is not None else (-1.0, 1.0)
        result.append(rng.uniform(lo, hi, size=(samples,) + tuple(d["shape"][1:])).astype(np.float32))
    return result


def _io_grid(model: tfm.schema.ModelT, tensor_index: int, kind: str):
    """(scale, zero point) of a graph I/O tensor, looking through the QUANTIZE/DEQUANTIZE of
    float I/O to the int8 tensor behind it."""
    sg = model.subgraphs[0]
    t = sg.tensors[tensor_index]
    if t.type != tfm.TensorType.FLOAT32:
        return tfm.per_tensor(t, f"graph {kind} {tfm.tensor_label(sg, tensor_index)}")
    for op in sg.operators:
        name = tfm.opcode_name(model, op.opcodeIndex)
        if kind == "input" and name == "QUANTIZE" and int(op.inputs[0]) == tensor_index:
            return tfm.per_tensor(sg.tensors[int(op.outputs[0])], "quantized model input")
        if kind == "output" and name == "DEQUANTIZE" and int(op.outputs[0]) == tensor_index:
            return tfm.per_tensor(sg.tensors[int(op.inputs[0])], "quantized model output")
    raise RNNPoolError(
        f"graph {kind} {tfm.tensor_label(sg, tensor_index)} is float32 without a "
        f"{'QUANTIZE' if kind == 'input' else 'DEQUANTIZE'} next to it"
    )


def _with_grid(details: dict, grid) -> dict:
    d = dict(details)
    d["scale"], d["zero_point"] = float(grid[0]), int(grid[1])
    return d


# -- parity ------------------------------------------------------------------------------------------


def _to_grid(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    from ..reference.quant_params import round_half_away

    return np.clip(round_half_away(values.astype(np.float64) / np.float32(scale)) + zero_point, -128, 127)


def parity(tflite_q: Sequence[np.ndarray], keras_out: Sequence[np.ndarray], grids) -> dict:
    """Metrics over all outputs: the TFLite int8 values vs the Keras outputs on the same grids."""
    errs, diffs, a_all, b_all = [], [], [], []
    for q, k, (scale, zp) in zip(tflite_q, keras_out, grids):
        k = np.asarray(k, np.float64).reshape(q.shape)
        errs.append(np.abs(q.astype(np.int64) - _to_grid(k, scale, zp).astype(np.int64)).max())
        deq = (q.astype(np.float64) - zp) * np.float32(scale)
        diffs.append((deq - k).ravel())
        a_all.append(deq.ravel())
        b_all.append(k.ravel())
    d, a, b = np.concatenate(diffs), np.concatenate(a_all), np.concatenate(b_all)
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(a @ b / denom) if denom > 0 else (1.0 if np.allclose(a, b) else 0.0)
    first_q, first_k = tflite_q[0], np.asarray(keras_out[0]).reshape(tflite_q[0].shape)
    n = first_q.shape[0]
    top1 = float(np.mean(first_q.reshape(n, -1).argmax(1) == first_k.reshape(n, -1).argmax(1)))
    return {
        "top1_agreement": top1,
        "max_abs_err_lsb": int(max(errs)),
        "rmse": float(np.sqrt(np.mean(d**2))),
        "cosine": cosine,
    }


def _keras_outputs(keras_model, inputs: List[np.ndarray]) -> List[np.ndarray]:
    out = keras_model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0, batch_size=64)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def _accuracy(outputs: np.ndarray, labels: np.ndarray) -> Optional[float]:
    n = outputs.shape[0]
    flat = outputs.reshape(n, -1)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.max(initial=0) >= flat.shape[1]:
        return None
    return float(np.mean(flat.argmax(1) == labels))


# -- the check ------------------------------------------------------------------------------------------


def check_model(
    model,
    keras_model=None,
    data=None,
    board: Optional[str] = None,
    samples: int = DEFAULT_SAMPLES,
    mode: str = "auto",
    min_top1: float = DEFAULT_MIN_TOP1,
    max_lsb: int = DEFAULT_MAX_LSB,
    measure_arena: bool = True,
    seed: int = 0,
    detector=None,
) -> CheckReport:
    """Checks a .tflite (path or bytes). `keras_model`: a Keras model or a path to one;
    `data`: an .npz path, or (inputs list, labels or None). `detector` (a
    runtime.detection_native.DetectorSetup): the firmware judged for `board` also holds the
    detector's post-processing, as `export` builds it for a detector."""
    from ..reference import rnnpool_int8

    model_path = None if isinstance(model, (bytes, bytearray)) else pathlib.Path(model)
    host = host_runtime.HostModel(model, mode)
    from ..arena.offline_planner import check_own_plan

    check_own_plan(host.data)  # an unsafe offline plan: a clear error, not the firmware's garbage
    m = host.model
    sg = m.subgraphs[0]
    in_grids = [_io_grid(m, int(i), "input") for i in sg.inputs]
    out_grids = [_io_grid(m, int(i), "output") for i in sg.outputs]
    in_details = [_with_grid(d, g) for d, g in zip(host.input_details, in_grids)]

    labels = None
    if data is None:
        x_float = generated_inputs(in_details, samples, seed)
    elif isinstance(data, (str, os.PathLike)):
        x_float, labels = load_data(data, in_details)
    else:
        x_float, labels = data
    x_model = [host_runtime.quantize_inputs(d, x) for d, x in zip(host.input_details, x_float)]
    result = host.run(x_model)

    mismatches = [int(np.count_nonzero(rnnpool_int8(t.inputs, t.node.params) != t.outputs)) for t in result.rnnpool]
    report = CheckReport(
        samples=int(x_model[0].shape[0]),
        mode=result.mode,
        rnnpool_bitexact=all(c == 0 for c in mismatches),
        rnnpool_mismatches=mismatches,
        output_sha256=host_runtime.output_sha256(result.outputs),
        model_bytes=len(host.data),
    )
    if not report.rnnpool_bitexact:
        report.failures.append(f"RNNPool ops differ from the golden reference ({mismatches} elements)")

    tflite_q = [o if o.dtype == np.int8 else _to_grid(o, *g).astype(np.int8) for o, g in zip(result.outputs, out_grids)]
    if labels is not None:
        report.tflite_accuracy = _accuracy(tflite_q[0], labels)
    if keras_model is not None:
        if not hasattr(keras_model, "predict"):
            from ..quantize.model import load_model

            keras_model = load_model(keras_model)
        # The Keras model sees exactly the values the int8 model sees.
        x_keras = [
            x if d["dtype"] == np.float32 else ((q.astype(np.float64) - g[1]) * g[0]).astype(np.float32)
            for x, q, d, g in zip(x_float, x_model, host.input_details, in_grids)
        ]
        keras_out = _keras_outputs(keras_model, x_keras)
        if len(keras_out) != len(tflite_q) or any(k.size != q.size for k, q in zip(keras_out, tflite_q)):
            raise RNNPoolError(
                f"the Keras model's outputs {[list(k.shape) for k in keras_out]} do not match the "
                f".tflite's {[list(q.shape) for q in tflite_q]}"
            )
        for key, value in parity(tflite_q, keras_out, out_grids).items():
            setattr(report, key, value)
        if labels is not None:
            report.keras_accuracy = _accuracy(keras_out[0], labels)
        if report.top1_agreement < min_top1:
            report.failures.append(f"top-1 agreement {report.top1_agreement:.2%} < {min_top1:.0%}")
        if report.max_abs_err_lsb > max_lsb:
            report.failures.append(f"max abs error {report.max_abs_err_lsb} LSB > {max_lsb}")

    if board is not None and not measure_arena:
        raise RNNPoolError("a board verdict needs the arena size (measure_arena=True)")
    if measure_arena:
        from ..deploy import fit as fitting

        arena = fitting.arena_figure(host.data, model_path)
        report.arena_bytes, report.arena_exact, report.arena_label = arena.bytes, arena.exact, arena.label
        from ..arena import estimate_arena

        report.arena_greedy_bytes = estimate_arena(host.data, "cortex-m4").greedy_total_bytes
        if board is not None:
            fit = fitting.assess(host.data, board, model_path=model_path, arena=arena, detector=detector)
            report.board, report.fits, report.verdict, report.fit = fit.board, fit.fits, fit.message(), fit.as_dict()
            if not fit.fits:
                report.failures.append(f"does not fit {fit.board}")
    return report
