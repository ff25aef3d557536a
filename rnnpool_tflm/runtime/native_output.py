"""What native code (TFLM's MicroPrintf, TensorFlow's C++ logging) writes to file
descriptor 2: Python's sys.stderr does not see it, so it is caught at the fd."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Iterator, List


@contextlib.contextmanager
def captured_stderr_fd() -> Iterator[List[str]]:
    """Redirects fd 2 inside the block; the yielded list receives the text afterwards."""
    out: List[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.append(sink.read().decode("utf-8", "replace"))
