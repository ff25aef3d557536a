"""Atomic file writes: a reader never sees a half-written file, a failure leaves the old one."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Union

PathLike = Union[str, os.PathLike]


def atomic_write_bytes(path: PathLike, data: bytes) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> pathlib.Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def load_arrays(path: PathLike, what: str):
    """np.load of a user's .npy/.npz file (no pickles), with errors that name the file and its role."""
    import numpy as np

    from .errors import RNNPoolError
    path = pathlib.Path(path)
    if not path.is_file():
        raise RNNPoolError(f"{what} {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise RNNPoolError(f"cannot read {what} {path} as a NumPy .npy/.npz file "
                           f"({type(exc).__name__}: {exc})") from None
