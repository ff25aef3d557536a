"""The custom ops (RNNPool, InvertedResidual) inside the tflite-micro Python interpreter (needs TFLM_DIR).

The wheel looks custom-op registerers up by name with ``dlsym(RTLD_DEFAULT, name)``
(python/tflite_micro/interpreter_wrapper.cc), so the function must live in a
library loaded with RTLD_GLOBAL. This module compiles one on the host with g++
against the TFLM headers of ``$TFLM_DIR`` -- each op's C core, its TFLM
registration and registerer (custom_ops/rnnpool, custom_ops/inverted_residual) and
the few TFLM sources they call -- with the wheel's defines (TF_LITE_STATIC_MEMORY, USE_TFLM_COMPRESSION: the pypi build's),
hidden visibility except the registerers, and no undefined symbols (-z defs), so it
depends on nothing but the structs and virtual tables it shares with the wheel.
The library is cached (toolchain.build_cache.cache_root()).

    from rnnpool_tflm import tflm_registerer
    name = tflm_registerer.load()          # "RNNPoolRegisterer"
    names = tflm_registerer.load_all()     # every op's registerer
    runtime.Interpreter.from_bytes(model, custom_op_registerers=names)
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
from typing import List, Optional

from ..core.errors import RNNPoolError
from ..core.sources import COMMON_DIR, INVRES_DIR, OP_DIR
from ..toolchain import tflm_tree as tflm_sources
from ..toolchain.build_cache import cache_root, compiler_id, digest, locked

SYMBOL = "RNNPoolRegisterer"
SYMBOLS = (SYMBOL, "InvertedResidualRegisterer")  # one per custom op, in the same library
OP_DIRS = (OP_DIR, INVRES_DIR, COMMON_DIR)  # COMMON_DIR: headers only
HOST_CC, HOST_CXX = "gcc", "g++"
# The wheel's build (tensorflow/lite/micro/build_def.bzl micro_copts, --//:with_compression).
WHEEL_DEFINES = ("-DTF_LITE_STATIC_MEMORY=1", "-DUSE_TFLM_COMPRESSION=1", "-DNDEBUG")
CXX_FLAGS = (
    "-std=c++17",
    "-O2",
    "-fPIC",
    "-fvisibility=hidden",
    "-fvisibility-inlines-hidden",
    "-fno-exceptions",
    "-fno-rtti",
    "-fno-threadsafe-statics",
    "-ffunction-sections",
    "-fdata-sections",
    "-w",
)
C_FLAGS = (
    "-std=c99",
    "-O2",
    "-fPIC",
    "-fvisibility=hidden",
    "-fno-fast-math",
    "-ffunction-sections",
    "-fdata-sections",
)
# The TFLM sources the op and the registerer call into (the rest is the wheel's, reached through
# TfLiteContext function pointers and MicroContext's virtual table); --gc-sections drops the
# parts of them nothing here uses.
TFLM_SOURCES = (
    "tensorflow/lite/micro/kernels/kernel_util.cc",
    "tensorflow/lite/micro/micro_log.cc",
    "tensorflow/lite/micro/debug_log.cc",
    "tensorflow/lite/micro/micro_context.cc",
    "tensorflow/lite/core/c/common.cc",
)


def registerer_sources() -> List[pathlib.Path]:
    """Every op's C core and C++ (TFLM registration, options, registerer)."""
    return [f for d in OP_DIRS for f in sorted(d.glob("*.c")) + sorted(d.glob("*.cc"))]


def _key(root: pathlib.Path) -> str:
    files = registerer_sources() + [h for d in OP_DIRS for h in sorted(d.glob("*.h"))]
    return digest(
        "registerer-v2",
        str(root),
        tflm_sources.tflm_commit(root),
        compiler_id(HOST_CXX),
        WHEEL_DEFINES,
        CXX_FLAGS,
        C_FLAGS,
        TFLM_SOURCES,
        [(str(f), hashlib.sha256(f.read_bytes()).hexdigest()) for f in files],
    )


def build(root: Optional[pathlib.Path] = None) -> pathlib.Path:
    """The registerer library for the TFLM checkout `root` (default $TFLM_DIR), built once."""
    root = tflm_sources.check_tflm_dir(root) if root else tflm_sources.tflm_dir()
    missing = [t for t in (HOST_CC, HOST_CXX) if shutil.which(t) is None]
    if missing:
        raise RNNPoolError(f"missing host compiler(s) {', '.join(missing)} (Debian: g++)")
    key = _key(root)
    out = cache_root() / f"registerer-{key[:16]}"
    lib = out / "librnnpool_registerer.so"
    with locked(out.with_suffix(".lock")):
        if lib.is_file():
            return lib
        out.mkdir(parents=True, exist_ok=True)
        includes = [f"-I{d}" for d in [*OP_DIRS, *tflm_sources.host_include_dirs(root)]]
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            objs = []
            for i, source in enumerate(registerer_sources() + [root / s for s in TFLM_SOURCES]):
                obj = pathlib.Path(tmp) / f"{i:02d}_{source.stem}.o"
                cmd = [HOST_CC, *C_FLAGS] if source.suffix == ".c" else [HOST_CXX, *CXX_FLAGS, *WHEEL_DEFINES]
                done = subprocess.run(
                    [*cmd, *includes, "-c", str(source), "-o", str(obj)], capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise RNNPoolError(f"compiling {source} for the registerer failed:\n{done.stderr.strip()[-3000:]}")
                objs.append(str(obj))
            tmp_lib = pathlib.Path(tmp) / lib.name
            done = subprocess.run(
                [HOST_CXX, "-shared", "-Wl,-z,defs", "-Wl,--gc-sections", "-o", str(tmp_lib), *objs, "-lm"],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RNNPoolError(f"linking the registerer failed:\n{done.stderr.strip()[-3000:]}")
            os.replace(tmp_lib, lib)
        return lib


@functools.cache
def _load(path: str) -> ctypes.CDLL:
    handle = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_GLOBAL)
    for symbol in SYMBOLS:
        getattr(handle, symbol)  # fails loudly if a symbol is missing
    return handle


def load(root: Optional[pathlib.Path] = None) -> str:
    """Builds (cached) and loads the registerers globally; returns the RNNPool op's name to pass in
    custom_op_registerers. A clear error naming TFLM_DIR when it is unset."""
    _load(str(build(root)))
    return SYMBOL


def load_all(root: Optional[pathlib.Path] = None) -> List[str]:
    """As load(), but the names of every custom op's registerer."""
    _load(str(build(root)))
    return list(SYMBOLS)


def available() -> bool:
    """Whether TFLM_DIR is set (the registerer can be built)."""
    return tflm_sources.tflm_dir(required=False) is not None
