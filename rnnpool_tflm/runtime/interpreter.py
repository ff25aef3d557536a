"""Opens a model in the tflite-micro wheel's Python interpreter: the one place that
knows its constructor (and its misspelt `intrepreter_config` keyword)."""

from __future__ import annotations

import contextlib
import os
from typing import Sequence


def default_arena_size(model: bytes, minimum: int = 1 << 20) -> int:
    """An arena generous enough for any model the host runs: every tensor without constant
    data side by side, twice (the planner never needs more for them, even when all are
    preserved), plus 16 times the flatbuffer for what the interpreter keeps per operator.
    (Small weights do not mean small activations: a model can need megabytes of arena.)"""
    import numpy as np

    from ..tflite import model as tfm
    try:
        parsed = tfm.read_model(model)
    except Exception:  # the interpreter reports a broken model in its own words
        return max(minimum, 16 * len(model))
    activations = 0
    for subgraph in parsed.subgraphs or []:
        for tensor in subgraph.tensors or []:
            if tfm.constant_data(parsed, tensor) is None:
                itemsize = np.dtype(tfm.NUMPY_TYPES.get(tensor.type, np.float64)).itemsize
                activations += int(np.prod(tfm.tensor_shape(tensor), dtype=np.int64)) * itemsize
    # A multiple of 16: where the arena ends decides the tail's alignment padding, and the
    # x86-64 arena model (rnnpool_tflm.arena) expects an aligned end.
    return max(minimum, (2 * activations + 16 * len(model) + 15) // 16 * 16)


def open_interpreter(model: bytes, arena_size: int, registerers: Sequence[str] = (),
                     preserve_all_tensors: bool = False):
    """A tflite_micro runtime.Interpreter over `model`, tensors allocated.

    Raises what the wrapper raises (RuntimeError/ValueError with a generic text; TFLM's
    own reason goes to file descriptor 2, see native_output.captured_stderr_fd)."""
    from tflite_micro.python.tflite_micro import runtime
    config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors
              else runtime.InterpreterConfig.kAllocationRecording)
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # it prints a resource-variable count
        return runtime.Interpreter.from_bytes(bytes(model), custom_op_registerers=list(registerers),
                                              arena_size=arena_size, intrepreter_config=config)
