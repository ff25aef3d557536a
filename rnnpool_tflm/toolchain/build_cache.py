"""The build cache native builds share (TFLM library, firmware objects, host registerer):
a folder outside the repository, keys from content digests, and a lock for concurrent builders."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pathlib
import subprocess

CACHE_ENV = "RNNPOOL_TFLM_CACHE"


@functools.cache
def compiler_id(tool: str) -> str:
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[0].strip()


def cache_root() -> pathlib.Path:
    value = os.environ.get(CACHE_ENV, "").strip()
    root = pathlib.Path(value).expanduser() if value else pathlib.Path.home() / ".cache" / "rnnpool-tflm"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def locked(path: pathlib.Path):
    """An exclusive lock (several test workers may build the same library)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (one build at a time there)
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
