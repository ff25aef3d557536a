"""The firmware's test data: the input it runs and the output the host computes for it.

The input comes from the user's .npy/.npz (float data is quantized with the input's
scale/zero point) or is deterministic random data over each input's range; the expected
output is the model run on the host (the tflite-micro interpreter; RNNPool models through
rnnpool_tflm.runtime.host, as `check` runs them).
"""

from __future__ import annotations

import pathlib
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..core.errors import RNNPoolError
from ..core.files import load_arrays
from ..runtime.interpreter import default_arena_size, open_interpreter
from ..runtime.native_output import captured_stderr_fd
from ..tflite.model_info import ModelInfo, TensorInfo, check_ops_supported, read_model_info

# ---- inputs -------------------------------------------------------------------------------------


def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def coerce_input(array: np.ndarray, info: TensorInfo, label: str) -> np.ndarray:
    """`array` as the model input `info` wants it: same element count (leading 1s may
    differ), same dtype, or float data quantized with the input's scale/zero point."""
    array = np.asarray(array)
    if array.size != int(np.prod(info.shape, dtype=np.int64)):
        raise RNNPoolError(
            f"{label} has shape {tuple(array.shape)}, the model input {info.name!r} needs {tuple(info.shape)}"
        )
    if tuple(s for s in array.shape if s != 1) != tuple(s for s in info.shape if s != 1):
        raise RNNPoolError(
            f"{label} has shape {tuple(array.shape)}, the model input {info.name!r} needs {tuple(info.shape)}"
        )
    array = array.reshape(info.shape)
    want = np.dtype(info.dtype)
    if array.dtype == want:
        return array
    if array.dtype.kind == "f" and want.kind in "iu":
        if not info.scale > 0:
            raise RNNPoolError(f"{label} is float but the {want} input {info.name!r} has no quantization scale")
        info_range = np.iinfo(want)
        q = _round_half_away(array.astype(np.float64) / info.scale) + info.zero_point
        return np.clip(q, info_range.min, info_range.max).astype(want)
    if want.kind == "f" and array.dtype.kind in "fiu":
        return array.astype(want)
    raise RNNPoolError(f"{label} has dtype {array.dtype}, the model input {info.name!r} needs {want}")


def load_inputs(path: Optional[pathlib.Path], info: ModelInfo, seed: int = 0) -> List[np.ndarray]:
    """The test inputs: from FILE.npy (one input) / FILE.npz (by name or in order), or
    deterministic random data over each input's range."""
    if path is None:
        rng = np.random.default_rng(seed)
        out = []
        for t in info.inputs:
            dt = np.dtype(t.dtype)
            if dt.kind in "iu":
                lim = np.iinfo(dt)
                out.append(rng.integers(lim.min, lim.max, size=t.shape, endpoint=True).astype(dt))
            elif dt.kind == "b":
                out.append(rng.integers(0, 1, size=t.shape, endpoint=True).astype(dt))
            else:
                out.append(rng.standard_normal(t.shape).astype(dt))
        return out
    path = pathlib.Path(path)
    loaded = load_arrays(path, "input file")
    if isinstance(loaded, np.ndarray):
        if len(info.inputs) != 1:
            raise RNNPoolError(f"{path} holds one array, the model has {len(info.inputs)} inputs (use .npz)")
        return [coerce_input(loaded, info.inputs[0], str(path))]
    keys = list(loaded)
    arrays = []
    for i, t in enumerate(info.inputs):
        key = t.name if t.name in keys else (f"arr_{i}" if f"arr_{i}" in keys else None)
        if key is None and len(keys) == len(info.inputs):
            key = keys[i]
        if key is None:
            raise RNNPoolError(f"{path} has no array for input {t.name!r} (keys: {', '.join(keys)})")
        arrays.append(coerce_input(loaded[key], t, f"{path}[{key}]"))
    return arrays


# ---- the host run (switchable: the RNNPool host path comes from check) -------------------------


def host_outputs(model: bytes, inputs: Sequence[np.ndarray], info: ModelInfo) -> List[np.ndarray]:
    """The model's outputs on the host: the tflite-micro Python interpreter; for models with
    custom ops (RNNPool, InvertedResidual), check's host run (rnnpool_tflm.runtime.host: the ops
    registered into the interpreter when TFLM_DIR is set, else the graph partitioned around
    their C kernels)."""
    if info.custom_ops:
        from ..runtime import host as host_runtime

        result = host_runtime.run(bytes(model), [np.asarray(x) for x in inputs])
        return [np.asarray(o).reshape(t.shape) for o, t in zip(result.outputs, info.outputs, strict=True)]
    return run_interpreter(model, inputs, len(info.outputs), isolate_prepare=True)


def run_interpreter(
    model: bytes,
    inputs: Sequence[np.ndarray],
    output_count: int,
    registerers: Sequence[str] = (),
    arena_size: Optional[int] = None,
    isolate_prepare: bool = False,
) -> List[np.ndarray]:
    """Runs the model once in the tflite-micro Python interpreter; a failure's message
    carries what TFLM printed (e.g. the RNNPool op's reason for rejecting the model).
    `isolate_prepare`: see runtime.interpreter.open_interpreter (for a user's model)."""
    size = arena_size or default_arena_size(model, minimum=4 << 20)
    failure = None
    with captured_stderr_fd() as said:
        try:
            interpreter = open_interpreter(model, size, registerers, isolate_prepare=isolate_prepare)
            for i, x in enumerate(inputs):
                interpreter.set_input(x, i)
            interpreter.invoke()
            outputs = [np.array(interpreter.get_output(i)) for i in range(output_count)]
        except Exception as exc:  # the wrapper raises RuntimeError/ValueError with a generic text
            failure = exc
    if failure is not None:
        lines = [line.strip() for line in said[0].splitlines() if line.strip()]
        detail = f"; TFLM said: {' | '.join(lines[-4:])}" if lines else ""
        raise RNNPoolError(f"the tflite-micro interpreter could not run the model: {failure}{detail}") from None
    return outputs


def prepare(
    model: bytes, input_path: Optional[pathlib.Path] = None, host_run: Callable = host_outputs, name: str = "model"
) -> Tuple[ModelInfo, List[np.ndarray], List[np.ndarray]]:
    """Reads the model (`name`, the file, starts its error messages), picks the test inputs,
    runs it on the host. A model carrying an offline memory plan that overlaps live tensors
    unsafely is refused here (UnsafePlanError), before the firmware would compute garbage with it."""
    from ..arena.offline_planner import check_own_plan
    from ..toolchain import tflm_tree as tflm_sources

    info = read_model_info(model, name)
    check_ops_supported(info, tflm_sources.tflm_dir(required=False))
    check_own_plan(model)
    inputs = load_inputs(input_path, info)
    expected = host_run(model, inputs, info)
    return info, inputs, expected
