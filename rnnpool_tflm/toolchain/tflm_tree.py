"""A TensorFlow Lite Micro checkout (``TFLM_DIR``) and the sources of its library.

``TFLM_DIR`` is the root of a tflite-micro tree at the pinned commit with the
third-party code where TFLM's own Makefile download step puts it
(``tensorflow/lite/micro/tools/make/downloads/{flatbuffers,gemmlowp,ruy,kissfft,
cmsis,cmsis_nn}``). The project never copies any of it.

The source list reproduces what TFLM's Makefile compiles into
``libtensorflow-microlite.a`` for ``TARGET=cortex_m_generic
OPTIMIZED_KERNEL_DIR=cmsis_nn`` (sources.inc, additional_kernels.inc,
ext_libs/cmsis_nn.inc and specialize_files.py), read from the checkout itself so
it follows the tree it is given.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from typing import Dict, List, Optional, Tuple

from .. import TFLM_COMMIT as PINNED_COMMIT
from ..core.errors import RNNPoolError

TFLM_ENV = "TFLM_DIR"
MAKE_DIR = pathlib.PurePosixPath("tensorflow/lite/micro/tools/make")
DOWNLOADS = MAKE_DIR / "downloads"

# What a usable TFLM_DIR must contain (relative paths), with what each one is.
_REQUIRED = (
    ("tensorflow/lite/micro/micro_interpreter.h", "the tflite-micro tree"),
    (f"{MAKE_DIR}/sources.inc", "TFLM's Makefile source lists"),
    (f"{DOWNLOADS}/flatbuffers/include/flatbuffers/flatbuffers.h", "flatbuffers (flatbuffers_download.sh)"),
    (f"{DOWNLOADS}/gemmlowp/fixedpoint/fixedpoint.h", "gemmlowp (third_party_downloads.inc)"),
    (f"{DOWNLOADS}/ruy/ruy/profiler/instrumentation.h", "ruy (third_party_downloads.inc)"),
    (f"{DOWNLOADS}/kissfft/kiss_fft.h", "kissfft (third_party_downloads.inc)"),
    (f"{DOWNLOADS}/cmsis/CMSIS/Core/Include/core_cm4.h", "CMSIS_6 (ext_libs/cmsis_download.sh)"),
    (f"{DOWNLOADS}/cmsis/Cortex_DFP/Device/ARMCM4/Include/ARMCM4.h", "Cortex_DFP (ext_libs/cmsis_download.sh)"),
    (f"{DOWNLOADS}/cmsis_nn/Include/arm_nnfunctions.h", "CMSIS-NN (ext_libs/cmsis_nn_download.sh)"),
)


def tflm_dir(required: bool = True) -> Optional[pathlib.Path]:
    """The checkout named by $TFLM_DIR, checked; None when unset and not required."""
    value = os.environ.get(TFLM_ENV, "").strip()
    if not value:
        if not required:
            return None
        raise RNNPoolError(
            f"{TFLM_ENV} is not set: point it at a tflite-micro checkout of commit {PINNED_COMMIT[:12]} "
            f"with its third-party downloads (see firmware/README.md, 'TFLM_DIR')")
    return check_tflm_dir(pathlib.Path(value))


def check_tflm_dir(root: pathlib.Path) -> pathlib.Path:
    root = pathlib.Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RNNPoolError(f"{TFLM_ENV}={root} is not a directory")
    for rel, what in _REQUIRED:
        if not (root / rel).is_file():
            raise RNNPoolError(f"{TFLM_ENV}={root} lacks {what}: {rel} is missing "
                               "(see firmware/README.md, 'TFLM_DIR')")
    return root


def tflm_commit(root: pathlib.Path) -> Optional[str]:
    """The checkout's commit if it says (a .tflm_commit file or a git HEAD); None otherwise."""
    marker = root / ".tflm_commit"
    if marker.is_file():
        return marker.read_text().strip() or None
    head = root / ".git" / "HEAD"
    if head.is_file():
        text = head.read_text().strip()
        if text.startswith("ref: "):
            ref = root / ".git" / text[5:]
            return ref.read_text().strip() if ref.is_file() else None
        return text
    return None


def include_dirs(root: pathlib.Path) -> List[pathlib.Path]:
    """TFLM's INCLUDES for cortex_m_generic + cmsis_nn, in the Makefile's order."""
    d = root / DOWNLOADS
    return [root, d, d / "gemmlowp", d / "flatbuffers" / "include", d / "kissfft", d / "ruy",
            d / "cmsis" / "Cortex_DFP" / "Device" / "ARMCM4" / "Include", d / "cmsis" / "CMSIS" / "Core" / "Include",
            d / "cmsis", d / "cmsis_nn", d / "cmsis_nn" / "Include"]


def host_include_dirs(root: pathlib.Path) -> List[pathlib.Path]:
    """The headers a host (x86-64) build against TFLM needs: no CMSIS."""
    d = root / DOWNLOADS
    return [root, d, d / "gemmlowp", d / "flatbuffers" / "include", d / "kissfft", d / "ruy"]


@dataclasses.dataclass(frozen=True)
class LibrarySources:
    """Relative paths (to TFLM_DIR) grouped by the Makefile's optimisation level."""

    core: Tuple[str, ...]                 # MICROLITE_CC_SRCS: CORE_OPTIMIZATION_LEVEL (-Os)
    kernels: Tuple[str, ...]              # MICROLITE_CC_KERNEL_SRCS: KERNEL_OPTIMIZATION_LEVEL (-O2)
    third_party_kernels: Tuple[str, ...]  # CMSIS-NN: THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL (-O2)

    def all(self) -> Tuple[str, ...]:
        return self.core + self.kernels + self.third_party_kernels


def _make_lists(text: str) -> Dict[str, List[str]]:
    """Explicit `VAR := \\` / `VAR += \\` file lists of a Makefile fragment ($(wildcard) entries skipped)."""
    lists: Dict[str, List[str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        m = re.match(r"^([A-Z_]+)\s*(:=|\+=)\s*\\\s*$", line)
        if not m:
            continue
        items = lists.setdefault(m.group(1), [])
        if m.group(2) == ":=":
            items.clear()
        for entry in lines:  # continuation lines; the last one has no trailing backslash
            value = entry.strip().rstrip("\\").strip()
            if value and "$(" not in value.replace("$(TENSORFLOW_ROOT)", ""):
                items.append(value.replace("$(TENSORFLOW_ROOT)", ""))
            if not entry.rstrip().endswith("\\"):
                break
    return lists


def _specialize(files: List[str], root: pathlib.Path, directory: str) -> List[str]:
    """specialize_files.py: a file of the same name in `directory` replaces the base file."""
    path = root / directory
    if not path.is_dir():
        return files
    names = set(os.listdir(path))
    return [f"{directory}/{pathlib.PurePosixPath(f).name}" if pathlib.PurePosixPath(f).name in names else f
            for f in files]


def _glob(root: pathlib.Path, pattern: str) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.glob(pattern) if p.is_file())


def library_sources(root: pathlib.Path) -> LibrarySources:
    """The sources of libtensorflow-microlite.a for cortex_m_generic with CMSIS-NN kernels."""
    make = root / MAKE_DIR
    lists = _make_lists((make / "sources.inc").read_text())
    extra = _make_lists((make / "additional_kernels.inc").read_text())
    for name in ("MICROLITE_TEST_SRCS", "MICROLITE_CC_KERNEL_SRCS", "MICROLITE_CC_SIGNAL_KERNEL_SRCS"):
        if not lists.get(name):
            raise RNNPoolError(f"{make / 'sources.inc'}: list {name} not found (an unexpected TFLM version?)")

    # TFL_CC_SRCS: every .cc/.c under tensorflow/ outside lite/experimental and lite/micro.
    tfl = []
    for dirpath, dirnames, filenames in os.walk(root / "tensorflow"):
        rel_dir = pathlib.Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = sorted(d for d in dirnames
                             if f"{rel_dir}/{d}" not in ("tensorflow/lite/experimental", "tensorflow/lite/micro"))
        tfl += [f"{rel_dir}/{f}" for f in sorted(filenames) if f.endswith((".cc", ".c"))]
    tfl = [f for f in tfl if f != "tensorflow/lite/array.cc"]  # BUILD_TYPE != no_tf_lite_static_memory

    base = []
    for pattern in ("tensorflow/lite/micro/*.cc", "tensorflow/lite/micro/arena_allocator/*.cc",
                    "tensorflow/lite/micro/memory_planner/*.cc", "tensorflow/lite/micro/tflite_bridge/*.cc"):
        base += _glob(root, pattern)
    excluded = set(lists["MICROLITE_TEST_SRCS"])
    excluded.update(_glob(root, "tensorflow/lite/micro/benchmarks/*benchmark.cc"))
    excluded.update(_glob(root, "tensorflow/lite/micro/tools/benchmarking/*benchmark.cc"))
    core = [f for f in base + tfl if f not in excluded]
    core = _specialize(core, root, "tensorflow/lite/micro/cortex_m_generic")

    kernels = lists["MICROLITE_CC_KERNEL_SRCS"] + extra.get("MICROLITE_CC_KERNEL_SRCS", [])
    kernels = _specialize(kernels, root, "tensorflow/lite/micro/kernels/cmsis_nn")
    kernels += lists["MICROLITE_CC_SIGNAL_KERNEL_SRCS"]

    # ext_libs/cmsis_nn.inc with ARM_NN_ENABLE_F16=0, ARM_NN_ENABLE_F32=0.
    cmsis_nn = [f for f in _glob(root, f"{DOWNLOADS}/cmsis_nn/Source/**/*.c")
                if not f.endswith(("_f16.c", "_f32.c", "/arm_nntables_flt.c"))]
    for f in core + kernels:
        if not (root / f).is_file():
            raise RNNPoolError(f"{TFLM_ENV}={root}: source {f} listed by TFLM's Makefile is missing")
    return LibrarySources(tuple(core), tuple(kernels), tuple(cmsis_nn))
