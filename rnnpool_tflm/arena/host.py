"""The arena the tflite-micro Python interpreter really uses (the x86-64 ground truth).

The wheel's interpreter allocates through a RecordingMicroAllocator, whose
print_allocations() writes "Arena allocation total/head/tail N bytes" with
MicroPrintf (C stderr); we read those lines from file descriptor 2.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from typing import Sequence

from ..core.errors import RNNPoolError
from ..runtime.interpreter import default_arena_size, open_interpreter
from ..runtime.native_output import captured_stderr_fd


@dataclasses.dataclass(frozen=True)
class HostArena:
    total_bytes: int
    head_bytes: int
    tail_bytes: int


def measure_host_arena(model: bytes, arena_size: int = 0, registerers: Sequence[str] = ()) -> HostArena:
    """Allocates the model in the Python interpreter and returns its arena figures."""
    size = arena_size or default_arena_size(model)
    with captured_stderr_fd() as text:
        try:
            interpreter = open_interpreter(model, size, registerers)
            interpreter.print_allocations()
        except RuntimeError as exc:
            failure = exc
        else:
            failure = None
    if failure is not None:
        raise RNNPoolError(
            f"the tflite-micro interpreter could not allocate the model in {size} bytes: "
            f"{failure}; it said: {text[0].strip()[-300:]}"
        )
    found = {key: int(value) for key, value in re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text[0])}
    if set(found) != {"total", "head", "tail"}:
        raise RNNPoolError(f"unexpected print_allocations() output: {text[0][:300]!r}")
    return HostArena(found["total"], found["head"], found["tail"])


def host_allocates(model: bytes, arena_size: int, registerers: Sequence[str] = ()) -> bool:
    """Whether the Python interpreter's AllocateTensors succeeds in `arena_size` bytes.

    Runs in a forked child: with some too-small arenas TFLM crashes instead of failing
    (a kernel's Init gets no OpData from a full tail and Prepare writes through the null
    pointer), so a crash counts as "does not allocate"."""
    from tflite_micro.python.tflite_micro import runtime  # noqa: F401  (import once, before forking)

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, just the verdict as exit status
        code = 1
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            open_interpreter(model, arena_size, registerers)
            code = 0
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def smallest_host_arena(model: bytes, upper: int, registerers: Sequence[str] = ()) -> int:
    """The smallest arena the Python interpreter accepts, by bisection below `upper`."""
    if not host_allocates(model, upper, registerers):
        raise RNNPoolError(f"the model does not allocate even in {upper} bytes")
    lo, hi = 0, upper
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if host_allocates(model, mid, registerers):
            hi = mid
        else:
            lo = mid
    return hi
