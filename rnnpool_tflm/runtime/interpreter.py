"""Opens a model in the tflite-micro wheel's Python interpreter: the one place that
knows its constructor (and its misspelt `intrepreter_config` keyword).

TFLM aborts the whole process (TFLITE_CHECK -> abort()) on some models it is given,
e.g. an ADD whose output scale is far below its inputs' (QuantizeMultiplierSmallerThanOneExp).
The reader (rnnpool_tflm.tflite) rejects every tensor-level case before this point; for
what only the kernels' Prepare can see, the entry points that take a user's model
(check's host run, export's) first open it in a forked child, so an abort there becomes
an RNNPoolError with what TFLM printed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import signal
from typing import Sequence

from ..core.errors import RNNPoolError


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


def open_interpreter(
    model: bytes,
    arena_size: int,
    registerers: Sequence[str] = (),
    preserve_all_tensors: bool = False,
    isolate_prepare: bool = False,
):
    """A tflite_micro runtime.Interpreter over `model`, tensors allocated.

    Raises what the wrapper raises (RuntimeError/ValueError with a generic text; TFLM's
    own reason goes to file descriptor 2, see native_output.captured_stderr_fd).
    `isolate_prepare`: first open it in a forked child (RNNPoolError if TFLM kills that
    child); for models from outside (check, export), as forking a process that has
    TensorFlow loaded costs tens of milliseconds."""
    from tflite_micro.python.tflite_micro import runtime

    config = (
        runtime.InterpreterConfig.kPreserveAllTensors
        if preserve_all_tensors
        else runtime.InterpreterConfig.kAllocationRecording
    )

    def create():
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # it prints a resource-variable count
            return runtime.Interpreter.from_bytes(
                bytes(model), custom_op_registerers=list(registerers), arena_size=arena_size, intrepreter_config=config
            )

    if isolate_prepare:
        _survives_in_child(create)
    return create()


def _survives_in_child(create) -> None:
    """Runs `create` in a forked child; raises RNNPoolError if the child dies of a signal.
    (An ordinary failure there is left to the caller's own attempt, which reports it.)"""
    if not hasattr(os, "fork"):
        return
    read_end, write_end = os.pipe()
    # The child shares the parent's objects (TensorFlow's among them) but not its threads:
    # a garbage collection there could run their finalizers and crash, so it never collects.
    collecting = gc.isenabled()
    gc.disable()
    pid = os.fork()
    if pid != 0 and collecting:
        gc.enable()
    if pid == 0:  # the child: never returns into the caller's code
        status = 1
        try:
            faulthandler.disable()  # a Python traceback of an abort would hide TFLM's words
            os.close(read_end)
            os.dup2(write_end, 2)
            create()
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    with os.fdopen(read_end, "rb") as said:
        while chunk := said.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        lines = [line.strip() for line in b"".join(chunks).decode("utf-8", "replace").splitlines() if line.strip()]
        detail = f"; TFLM said: {' | '.join(lines[-3:])}" if lines else ""
        raise RNNPoolError(
            f"the tflite-micro interpreter aborted ({signal.Signals(os.WTERMSIG(status)).name}) "
            f"while preparing the model{detail}"
        )
