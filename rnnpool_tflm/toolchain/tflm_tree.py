"""A TensorFlow Lite Micro checkout (``TFLM_DIR``) and the sources of its library.

``TFLM_DIR`` is the root of a tflite-micro tree at the pinned commit with the
third-party code where TFLM's own Makefile download step puts it
(``tensorflow/lite/micro/tools/make/downloads/{flatbuffers,gemmlowp,ruy,kissfft,
cmsis,cmsis_nn}``). The project never copies any of it.

The source list is what TFLM's own Makefile compiles into
``libtensorflow-microlite.a`` for ``TARGET=cortex_m_generic
OPTIMIZED_KERNEL_DIR=cmsis_nn``: the variables behind its ``list_library_sources``
and ``list_third_party_sources`` targets, asked from ``make`` in the checkout itself
(offline: the downloads it would fetch must be there, and the installed Arm toolchain
stands in for the one it would download), so it follows the tree it is given.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

from .. import TFLM_COMMIT as PINNED_COMMIT
from ..core.errors import RNNPoolError
from ..core.files import atomic_write_text
from .build_cache import cache_root, digest, locked

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
# Folders that must exist: TFLM's Makefile clones pigweed (used by TFLM's own tests, not the
# library) whenever the folder is missing, even to list sources; an empty folder stops it.
_REQUIRED_DIRS = (
    (
        f"{DOWNLOADS}/pigweed",
        "the pigweed folder (pigweed_download.sh; empty is enough, tools/fetch_tflm.sh creates it)",
    ),
)


def tflm_dir(required: bool = True) -> Optional[pathlib.Path]:
    """The checkout named by $TFLM_DIR, checked; None when unset and not required."""
    value = os.environ.get(TFLM_ENV, "").strip()
    if not value:
        if not required:
            return None
        raise RNNPoolError(
            f"{TFLM_ENV} is not set: point it at a tflite-micro checkout of commit {PINNED_COMMIT[:12]} "
            f"with its third-party downloads (see firmware/README.md, 'TFLM_DIR')"
        )
    return check_tflm_dir(pathlib.Path(value))


def check_tflm_dir(root: pathlib.Path) -> pathlib.Path:
    root = pathlib.Path(root).expanduser().resolve()
    if not root.is_dir():
        raise RNNPoolError(f"{TFLM_ENV}={root} is not a directory")
    for rel, what in _REQUIRED:
        if not (root / rel).is_file():
            raise RNNPoolError(f"{TFLM_ENV}={root} lacks {what}: {rel} is missing (see firmware/README.md, 'TFLM_DIR')")
    for rel, what in _REQUIRED_DIRS:
        if not (root / rel).is_dir():
            raise RNNPoolError(f"{TFLM_ENV}={root} lacks {what}: {rel} is missing (see firmware/README.md, 'TFLM_DIR')")
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
    return [
        root,
        d,
        d / "gemmlowp",
        d / "flatbuffers" / "include",
        d / "kissfft",
        d / "ruy",
        d / "cmsis" / "Cortex_DFP" / "Device" / "ARMCM4" / "Include",
        d / "cmsis" / "CMSIS" / "Core" / "Include",
        d / "cmsis",
        d / "cmsis_nn",
        d / "cmsis_nn" / "Include",
    ]


def cmsis_core_dirs(root: pathlib.Path) -> List[pathlib.Path]:
    """CMSIS-Core for the Cortex-M4 (ARMCM4.h -> core_cm4.h), also among include_dirs: with it
    on the include path firmware/platform/cortex_m4_core.h takes the core's register
    definitions (SysTick, SCB, DWT, DCB) from it (tests/test_cortex_m4_core.py)."""
    d = root / DOWNLOADS / "cmsis"
    return [d / "Cortex_DFP" / "Device" / "ARMCM4" / "Include", d / "CMSIS" / "Core" / "Include"]


def host_include_dirs(root: pathlib.Path) -> List[pathlib.Path]:
    """The headers a host (x86-64) build against TFLM needs: no CMSIS."""
    d = root / DOWNLOADS
    return [root, d, d / "gemmlowp", d / "flatbuffers" / "include", d / "kissfft", d / "ruy"]


@dataclasses.dataclass(frozen=True)
class LibrarySources:
    """Relative paths (to TFLM_DIR) grouped by the Makefile's optimisation level."""

    core: Tuple[str, ...]  # MICROLITE_CC_SRCS: CORE_OPTIMIZATION_LEVEL (-Os)
    kernels: Tuple[str, ...]  # MICROLITE_CC_KERNEL_SRCS: KERNEL_OPTIMIZATION_LEVEL (-O2)
    third_party_kernels: Tuple[str, ...]  # CMSIS-NN: THIRD_PARTY_KERNEL_OPTIMIZATION_LEVEL (-O2)

    def all(self) -> Tuple[str, ...]:
        return self.core + self.kernels + self.third_party_kernels


# TFLM's Makefile for the library the firmware links: cortex_m_generic with the CMSIS-NN
# kernels. TARGET_TOOLCHAIN_ROOT names an installed toolchain (else the Makefile downloads
# Arm's); BASE_GENDIR keeps its generated files (examples' test data) out of TFLM_DIR.
MAKE_ARGS = ("TARGET=cortex_m_generic", "TARGET_ARCH=cortex-m4", "OPTIMIZED_KERNEL_DIR=cmsis_nn")
# The Makefile variables behind `make list_library_sources` (MICROLITE_CC_SRCS +
# MICROLITE_CC_KERNEL_SRCS) and `list_third_party_sources` (THIRD_PARTY_CC_SRCS +
# THIRD_PARTY_KERNEL_CC_SRCS), printed one by one: each group has its own optimisation level.
_GROUPS = (
    ("core", "MICROLITE_CC_SRCS"),
    ("kernels", "MICROLITE_CC_KERNEL_SRCS"),
    ("third_party", "THIRD_PARTY_CC_SRCS"),
    ("third_party_kernels", "THIRD_PARTY_KERNEL_CC_SRCS"),
)
_PRINT_RULE = "rnnpool_print_%: ; @echo \"$*=$($*)\""


def _makefile_stamp(root: pathlib.Path) -> List[Tuple[str, int, int]]:
    """The Makefile fragments the lists come from (a cache key)."""
    stamps = []
    for pattern in (
        f"{MAKE_DIR}/**/*.inc",
        f"{MAKE_DIR}/Makefile",
        f"{MAKE_DIR}/*.py",
        "tensorflow/lite/micro/**/Makefile.inc",
        "signal/**/Makefile.inc",
    ):
        for path in sorted(root.glob(pattern)):
            st = path.stat()
            stamps.append((str(path.relative_to(root)), st.st_size, st.st_mtime_ns))
    return stamps


def _run_make(root: pathlib.Path) -> Dict[str, List[str]]:
    """The source lists TFLM's own Makefile computes (offline: every download it would
    fetch is present, see check_tflm_dir; the toolchain is the installed one)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise RNNPoolError(
            "arm-none-eabi-gcc is not installed (Debian's gcc-arm-none-eabi): TFLM's Makefile "
            "needs a toolchain to list its sources"
        )
    # The Makefile runs `python3` for its examples' test data (generate_cc_arrays.py needs
    # numpy and Pillow): this interpreter when it has them (the toolkit's environment).
    path = os.environ.get("PATH", "")
    if importlib.util.find_spec("PIL") and importlib.util.find_spec("numpy"):
        path = os.pathsep.join([os.path.dirname(sys.executable), path])
    env = {**os.environ, "PATH": path}
    with tempfile.TemporaryDirectory(prefix="rnnpool-tflm-make-") as gendir:
        done = subprocess.run(
            [
                "make",
                "-s",
                "-f",
                str(MAKE_DIR / "Makefile"),
                *MAKE_ARGS,
                f"TARGET_TOOLCHAIN_ROOT={os.path.dirname(gcc)}/",
                f"BASE_GENDIR={gendir}",
                f"--eval={_PRINT_RULE}",
                *(f"rnnpool_print_{var}" for _, var in _GROUPS),
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if done.returncode != 0:
        said = [line for line in done.stderr.splitlines() if "already exists, skipping" not in line]
        raise RNNPoolError(
            f"TFLM's Makefile could not list its sources in {root} (make exited "
            f"{done.returncode}; it needs `make` and a python3 with numpy and Pillow): "
            f"{' | '.join(said[-6:])}"
        )
    values = {}
    for line in done.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name] = value.split()
    missing = [var for _, var in _GROUPS if var not in values]
    if missing:
        raise RNNPoolError(f"TFLM's Makefile in {root} did not print {', '.join(missing)}")
    return {group: values[var] for group, var in _GROUPS}


def library_sources(root: pathlib.Path) -> LibrarySources:
    """The sources of libtensorflow-microlite.a for cortex_m_generic with the CMSIS-NN
    kernels, as TFLM's Makefile lists them (cached per tree: make takes seconds)."""
    root = pathlib.Path(root)
    key = digest("tflm-sources-v1", str(root), tflm_commit(root), MAKE_ARGS, _makefile_stamp(root))
    path = cache_root() / f"tflm-sources-{key[:16]}.json"
    with locked(path.with_suffix(".lock")):
        if path.is_file():
            groups = json.loads(path.read_text())
        else:
            groups = _run_make(root)
            atomic_write_text(path, json.dumps(groups))
    for rel in (f for files in groups.values() for f in files):
        if not (root / rel).is_file():
            raise RNNPoolError(f"{TFLM_ENV}={root}: source {rel} listed by TFLM's Makefile is missing")
    # THIRD_PARTY_CC_SRCS is empty for this target; it would compile at the core level.
    return LibrarySources(
        tuple(groups["core"] + groups["third_party"]), tuple(groups["kernels"]), tuple(groups["third_party_kernels"])
    )
