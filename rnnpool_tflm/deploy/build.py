"""Builds the TFLM firmware (firmware/) with Debian's arm-none-eabi toolchain.

Three parts, linked into one ELF:

* the TFLM library from ``$TFLM_DIR`` (tflm_sources.library_sources: what TFLM's
  Makefile builds for cortex_m_generic with the CMSIS-NN kernels), compiled with
  the Makefile's flags and optimisation levels and cached outside the repository
  (``$RNNPOOL_TFLM_CACHE`` or ~/.cache/rnnpool-tflm), keyed by the checkout, its
  files, the compiler and the flags, so a repeat build takes seconds;
* the custom ops: custom_ops/rnnpool and custom_ops/inverted_residual (C cores and
  TFLM registrations) and the narrow CONV_2D (custom_ops/conv), compiled in place;
* the app (firmware/src), the generated sources of one model (deploy/sources.py)
  and the platform code of one board of the record (core/boards.py): its linker
  script, start-up and console (semihosting on QEMU, a USART on the STM32 boards)
  and the C defines derived from the record (board_defines). The emulated boards
  run in QEMU (deploy/emulate.py); the real ones are built here for their sizes
  (deploy/fit.py) and with PlatformIO for flashing (firmware/platformio.ini).

Object files of the app side are cached by content too (source, the project's
headers, flags), so rebuilding a model already built is a link; the op and the
generated model compile without board defines, so one object serves every board.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import time
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

from ..core import boards
from ..core.errors import RNNPoolError
from ..core.files import atomic_write_text
from ..core.sources import COMMON_DIR, CONV_DIR, DETECTION_DIR, INVRES_DIR, OP_DIR
from ..toolchain import tflm_tree as tflm_sources
from ..toolchain.build_cache import cache_root, compiler_id, digest, locked

REPO = pathlib.Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
APP_DIR = FIRMWARE_DIR / "src"
PLATFORM_DIR = FIRMWARE_DIR / "platform"

CC, CXX, AR, OBJDUMP = "arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar", "arm-none-eabi-objdump"
CPU_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mlittle-endian")
# TFLM's Makefile flags for TARGET=cortex_m_generic OPTIMIZED_KERNEL_DIR=cmsis_nn
# BUILD_TYPE=release_with_logs (error messages kept: the firmware prints them).
TFLM_DEFINES = (
    "-DTF_LITE_STATIC_MEMORY",
    "-DTF_LITE_DISABLE_X86_NEON",
    "-DCMSIS_NN",
    "-DKERNELS_OPTIMIZED_FOR_SPEED",
    "-DNDEBUG",
    "-DTF_LITE_MCU_DEBUG_LOG",
    "-DCPU_M4=1",
    '-DCMSIS_DEVICE_ARM_CORTEX_M_XX_HEADER_FILE="ARMCM4.h"',
    "-DARMCM4",
    "-DARM_NN_ENABLE_F16=0",
    "-DARM_NN_ENABLE_F32=0",
)
COMMON_FLAGS = (
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-fmessage-length=0",
    "-fomit-frame-pointer",
    "-funsigned-char",
)
CXX_FLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
C_FLAGS = ("-std=c17",)
CORE_OPT, KERNEL_OPT, THIRD_PARTY_KERNEL_OPT = "-Os", "-O2", "-O2"
APP_OPT = "-O2"
APP_WARNINGS = ("-Wall", "-Wextra", "-Wno-unused-parameter", "-Wdouble-promotion", "-Wvla")
LINK_FLAGS = ("--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections")


# The platform sources each kind of board links (relative to firmware/platform): QEMU prints
# over semihosting, the STM32 boards over their console USART.
QEMU_SOURCES = ("startup_cm4.c", "semihosting.c", "cycle_counter.c")
BOARD_SOURCES = ("startup_cm4.c", "boards/uart_stm32f4.c", "cycle_counter.c")


def platform_sources(board: boards.Board) -> Tuple[str, ...]:
    return QEMU_SOURCES if board.qemu_machine else BOARD_SOURCES


def board_defines(board: boards.Board) -> Tuple[str, ...]:
    """The C defines of the platform code and the app for `board`, from the board record
    (firmware/platform/boards/board.h documents the ones the STM32 code reads)."""
    defines = [f"RNNPOOL_CORE_CLOCK_HZ={board.clock_hz}u"]
    if board.qemu_machine:
        defines.append("RNNPOOL_QEMU")
    if board.console is not None:
        c = board.console
        defines += [
            f"RNNPOOL_CONSOLE_USART={c.usart}",
            f"RNNPOOL_CONSOLE_TX_PORT={ord(c.tx_port) - ord('A')}",
            f"RNNPOOL_CONSOLE_TX_PIN={c.tx_pin}",
            f"RNNPOOL_STM32_OVERDRIVE={int(board.overdrive)}",
        ]
    return tuple(defines)


# ---- tools and cache ---------------------------------------------------------------------------


def missing_tools() -> List[str]:
    return [t for t in (CC, CXX, AR, OBJDUMP) if shutil.which(t) is None]


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise RNNPoolError(
            f"missing {', '.join(missing)}: install Debian's gcc-arm-none-eabi, "
            "libnewlib-arm-none-eabi and libstdc++-arm-none-eabi-newlib"
        )


# ---- compiling ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CompileJob:
    source: pathlib.Path
    obj: pathlib.Path
    command: Tuple[str, ...]


def _compile_command(
    source: pathlib.Path, obj: pathlib.Path, opt: str, includes: Sequence[pathlib.Path], extra: Sequence[str] = ()
) -> Tuple[str, ...]:
    cxx = source.suffix in (".cc", ".cpp")
    lang = CXX_FLAGS if cxx else C_FLAGS
    return (
        (CXX if cxx else CC),
        *CPU_FLAGS,
        *lang,
        *COMMON_FLAGS,
        *TFLM_DEFINES,
        opt,
        *extra,
        *(f"-I{d}" for d in includes),
        "-c",
        str(source),
        "-o",
        str(obj),
    )


def _run_jobs(jobs: Sequence[CompileJob], workers: int) -> None:
    def one(job: CompileJob):
        job.obj.parent.mkdir(parents=True, exist_ok=True)
        tmp = job.obj.with_name(job.obj.name + f".{os.getpid()}.tmp")
        command = list(job.command)
        command[command.index("-o") + 1] = str(tmp)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            return job, done.stderr
        os.replace(tmp, job.obj)
        return job, None

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        failures = [(job, err) for job, err in pool.map(one, jobs) if err is not None]
    if failures:
        job, err = failures[0]
        raise RNNPoolError(f"compiling {job.source} failed ({len(failures)} file(s) failed):\n{err.strip()[-4000:]}")


def _workers(jobs: Optional[int]) -> int:
    return jobs or os.cpu_count() or 1


# ---- the TFLM library --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TflmLibrary:
    path: pathlib.Path  # libtflm.a
    key: str
    root: pathlib.Path  # TFLM_DIR
    include_dirs: Tuple[pathlib.Path, ...]
    files: int
    build_seconds: float  # when it was built
    cached: bool  # True: this call reused it


def _library_key(root: pathlib.Path, sources: tflm_sources.LibrarySources) -> str:
    stamps = []
    for rel in sorted(sources.all()):  # the set, whatever order the Makefile lists it in
        st = (root / rel).stat()
        stamps.append((rel, st.st_size, st.st_mtime_ns))
    return digest(
        "tflm-lib-v1",
        str(root),
        tflm_sources.tflm_commit(root),
        compiler_id(CXX),
        CPU_FLAGS,
        TFLM_DEFINES,
        COMMON_FLAGS,
        CXX_FLAGS,
        C_FLAGS,
        CORE_OPT,
        KERNEL_OPT,
        THIRD_PARTY_KERNEL_OPT,
        stamps,
    )


def tflm_library(
    root: Optional[pathlib.Path] = None, jobs: Optional[int] = None, log: Optional[Callable[[str], None]] = None
) -> TflmLibrary:
    """The compiled TFLM library for the Cortex-M4, built on first use and cached."""
    require_tools()
    root = tflm_sources.check_tflm_dir(root) if root else tflm_sources.tflm_dir()
    sources = tflm_sources.library_sources(root)
    key = _library_key(root, sources)
    out = cache_root() / f"tflm-lib-{key[:16]}"
    lib = out / "libtflm.a"
    includes = tuple(tflm_sources.include_dirs(root))
    with locked(out.with_suffix(".lock")):
        info_path = out / "build.json"
        if lib.is_file() and info_path.is_file():
            info = json.loads(info_path.read_text())
            return TflmLibrary(lib, key, root, includes, info["files"], info["build_seconds"], True)
        if log:
            log(f"building the TFLM library ({len(sources.all())} files, {_workers(jobs)} jobs) into {out}")
        start = time.monotonic()
        jobs_list = []
        for group, opt in (
            (sources.core, CORE_OPT),
            (sources.kernels, KERNEL_OPT),
            (sources.third_party_kernels, THIRD_PARTY_KERNEL_OPT),
        ):
            for rel in group:
                # Flattened names: several sources share a base name (common.cc, ...).
                obj = out / "obj" / (rel.replace("/", "__") + ".o")
                jobs_list.append(CompileJob(root / rel, obj, _compile_command(root / rel, obj, opt, includes, ("-w",))))
        _run_jobs([j for j in jobs_list if not j.obj.is_file()], _workers(jobs))
        tmp_lib = lib.with_suffix(".a.tmp")
        tmp_lib.unlink(missing_ok=True)
        objs = sorted(j.obj.name for j in jobs_list)
        done = subprocess.run([AR, "rcs", str(tmp_lib), *objs], cwd=out / "obj", capture_output=True, text=True)
        if done.returncode != 0:
            raise RNNPoolError(f"{AR} failed: {done.stderr.strip()[-2000:]}")
        os.replace(tmp_lib, lib)
        seconds = time.monotonic() - start
        atomic_write_text(
            info_path,
            json.dumps(
                {
                    "files": len(jobs_list),
                    "build_seconds": round(seconds, 1),
                    "tflm_dir": str(root),
                    "commit": tflm_sources.tflm_commit(root),
                }
            ),
        )
        return TflmLibrary(lib, key, root, includes, len(jobs_list), seconds, False)


# ---- the firmware ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Section:
    """One allocated section of the ELF: where it runs (vma) and where it is stored (lma)."""

    name: str
    size: int
    vma: int
    lma: int
    load: bool  # has contents stored in the image (flash); NOLOAD sections do not

    @property
    def end(self) -> int:
        return self.vma + self.size


@dataclasses.dataclass(frozen=True)
class FirmwareBuild:
    elf: pathlib.Path
    board: boards.Board
    sections: Tuple[Section, ...]
    library: TflmLibrary
    seconds: float
    overflows: Tuple[str, ...] = ()  # the linker's overflow messages (a build made with allow_overflow)

    def size(self, name: str) -> int:
        return sum(s.size for s in self.sections if s.name == name)

    @property
    def flash_bytes(self) -> int:
        """Flash the image occupies: code, constants (the model, the test data), .data's
        initial values, alignment padding included (the end of the last stored byte)."""
        block = self.board.flash
        ends = [s.lma + s.size for s in self.sections if s.load and s.size and block.base <= s.lma < block.end]
        return max(ends, default=block.base) - block.base

    def ram_used(self, block: boards.MemoryBlock, exclude: Sequence[str] = ()) -> int:
        """Bytes of `block` the image reserves, from its start to the end of its last section
        (alignment padding included): in the arena's block .data, .bss, .arena and, on a board
        without CCM, .stack -- exactly what the linker script checks against the block.
        `exclude`: sections left out (the firmware's own data is everything but .arena and .stack)."""
        ends = [s.end for s in self.sections if s.size and block.base <= s.vma < block.end and s.name not in exclude]
        return max(ends, default=block.base) - block.base

    @property
    def static_ram_bytes(self) -> int:
        """RAM the image reserves, stack and arena excluded: .data + .bss."""
        return self.size(".data") + self.size(".bss")

    @property
    def arena_section_bytes(self) -> int:
        return self.size(".arena")

    @property
    def stack_bytes(self) -> int:
        return self.size(".stack")


def op_sources() -> List[pathlib.Path]:
    """The custom ops compiled from custom_ops/: C cores and TFLM registrations (not the
    host-only Python registerers); and the detector post-processing (custom_ops/detection)."""
    return (
        sorted(OP_DIR.glob("*.c"))
        + [OP_DIR / "rnnpool_tflm.cc"]
        + sorted(INVRES_DIR.glob("*.c"))
        + [INVRES_DIR / "inverted_residual_tflm.cc", INVRES_DIR / "inverted_residual_options.cc"]
        + sorted(CONV_DIR.glob("*.c"))
        + [CONV_DIR / "narrow_conv_tflm.cc"]
        + sorted(DETECTION_DIR.glob("*.c"))
    )


def app_sources() -> List[pathlib.Path]:
    return sorted(p for p in APP_DIR.iterdir() if p.suffix in (".c", ".cc"))


def _header_fingerprint(dirs: Iterable[pathlib.Path]) -> List[Tuple[str, str]]:
    prints = []
    for d in dirs:
        for path in sorted(d.rglob("*.h")):
            prints.append((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    return prints


_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def _generated_headers_seen(source: pathlib.Path, generated_dir: pathlib.Path) -> List[Tuple[str, str]]:
    """The generated headers `source` includes, directly or through the app's headers or one
    another, with their digests: an object depends on those only, so main.cc (slow to
    compile) is reused by every model with the same operators, whatever its arena or weights."""
    seen, visited, todo = {}, set(), [source]
    while todo:
        for name in _INCLUDE.findall(todo.pop().read_text(errors="replace")):
            for header in (generated_dir / name, APP_DIR / name):
                if header.is_file() and header not in visited:
                    visited.add(header)
                    todo.append(header)
                    if header.parent == generated_dir:
                        seen[name] = hashlib.sha256(header.read_bytes()).hexdigest()
    return sorted(seen.items())


def build_firmware(
    generated_dir: pathlib.Path,
    board,
    out_dir: pathlib.Path,
    defines: Sequence[str] = (),
    tflm_root: Optional[pathlib.Path] = None,
    jobs: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
    allow_overflow: bool = False,
) -> FirmwareBuild:
    """Compiles and links the firmware for one model (its generated sources) and one board
    of the record (a name, a QEMU machine name or a Board). `defines` reach the app
    (firmware/src). With `allow_overflow` a memory overflow does not fail the link: the
    ELF keeps the sizes the layout would have (for judging a fit) and the linker's
    messages are in `overflows`; such an ELF must not be run."""
    start = time.monotonic()
    target = boards.get_board(board)
    generated_dir = pathlib.Path(generated_dir).resolve()
    if not (generated_dir / "model_data.h").is_file():
        raise RNNPoolError(
            f"{generated_dir} holds no exported model (model_data.h is missing): run `rnnpool-tflm export` first"
        )
    library = tflm_library(tflm_root, jobs=jobs, log=log)
    includes = [APP_DIR, generated_dir, OP_DIR, INVRES_DIR, COMMON_DIR, CONV_DIR, DETECTION_DIR, PLATFORM_DIR]
    includes += library.include_dirs
    board_flags = tuple(f"-D{d}" for d in board_defines(target))
    app_flags = (*APP_WARNINGS, *board_flags, *(f"-D{d}" for d in defines))
    # Only the app and the platform code see the board; the op and the generated model
    # compile the same for every board, so their objects are shared between builds.
    groups = (
        (app_sources(), app_flags),
        ([PLATFORM_DIR / s for s in platform_sources(target)], (*APP_WARNINGS, *board_flags)),
        (op_sources() + sorted(generated_dir.glob("*.cc")), APP_WARNINGS),
    )
    project_headers = _header_fingerprint(
        [APP_DIR, OP_DIR, INVRES_DIR, COMMON_DIR, CONV_DIR, DETECTION_DIR, PLATFORM_DIR]
    )
    obj_cache = cache_root() / "obj"
    jobs_list, objs = [], []
    for sources, extra in groups:
        for source in sources:
            if not source.is_file():
                raise RNNPoolError(f"firmware source {source} is missing")
            # The key: the command with the (often temporary) generated folder named neutrally,
            # the source's content, the project's headers and the generated ones it includes.
            probe = [
                arg.replace(str(generated_dir), "<generated>")
                for arg in _compile_command(source, pathlib.Path("OBJ"), APP_OPT, includes, extra)
            ]
            key = digest(
                "fw-obj-v2",
                library.key,
                probe,
                hashlib.sha256(source.read_bytes()).hexdigest(),
                project_headers,
                _generated_headers_seen(source, generated_dir),
            )
            obj = obj_cache / key[:2] / f"{key[2:20]}-{source.stem}.o"
            objs.append(obj)
            if not obj.is_file():
                jobs_list.append(CompileJob(source, obj, _compile_command(source, obj, APP_OPT, includes, extra)))
    _run_jobs(jobs_list, _workers(jobs))

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / "firmware.elf"
    cmd = [
        CXX,
        *CPU_FLAGS,
        "-T",
        str(PLATFORM_DIR / target.linker_script),
        f"-L{PLATFORM_DIR}",
        *LINK_FLAGS,
        *(["-Wl,--noinhibit-exec"] if allow_overflow else []),
        f"-Wl,-Map={out_dir / 'firmware.map'}",
        *map(str, objs),
        str(library.path),
        "-lm",
        "-o",
        str(elf),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    overflows = tuple(
        line.split(": ", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if "overflow" in line or "will not fit in region" in line
    )
    if done.returncode != 0 or (overflows and not allow_overflow):
        raise RNNPoolError(f"linking the firmware for {target.name} failed:\n{done.stderr.strip()[-4000:]}")
    return FirmwareBuild(elf, target, elf_sections(elf), library, time.monotonic() - start, overflows)


_SECTION_LINE = re.compile(
    r"^\s*\d+\s+(\S+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+([0-9a-fA-F]+)\s+[0-9a-fA-F]+\s+"
    r"\S+\s+(.*)$"
)


def elf_sections(elf: pathlib.Path) -> Tuple[Section, ...]:
    """The allocated sections of an ELF (objdump's section headers: size, VMA, LMA, flags)."""
    done = subprocess.run([OBJDUMP, "-h", "-w", str(elf)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RNNPoolError(f"{OBJDUMP} could not read {elf}: {done.stderr.strip()[-1000:]}")
    sections = []
    for line in done.stdout.splitlines():
        match = _SECTION_LINE.match(line)
        if match and "ALLOC" in match.group(5):
            name, size, vma, lma, flags = match.groups()
            sections.append(Section(name, int(size, 16), int(vma, 16), int(lma, 16), "LOAD" in flags))
    return tuple(sections)
