"""Builds the TFLM firmware (firmware/) with Debian's arm-none-eabi toolchain.

Three parts, linked into one ELF:

* the TFLM library from ``$TFLM_DIR`` (tflm_sources.library_sources: what TFLM's
  Makefile builds for cortex_m_generic with the CMSIS-NN kernels), compiled with
  the Makefile's flags and optimisation levels and cached outside the repository
  (``$RNNPOOL_TFLM_CACHE`` or ~/.cache/rnnpool-tflm), keyed by the checkout, its
  files, the compiler and the flags, so a repeat build takes seconds;
* the custom ops: custom_ops/rnnpool and custom_ops/inverted_residual (C cores and
  TFLM registrations), compiled in place;
* the app (firmware/src), the generated sources of one model (see
  firmware_export) and a platform: the emulated STM32F405 (QEMU netduinoplus2),
  the emulated AN386 Cortex-M4 (QEMU mps2-an386), or one of the real boards'
  memory maps (for sizes; the boards themselves build with PlatformIO).

Object files of the app side are cached by content too (source, the project's
headers, flags), so rebuilding a model already built is a link.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..core.sources import DETECTION_DIR, INVRES_DIR, OP_DIR
from ..toolchain import tflm_tree as tflm_sources
from ..toolchain.build_cache import cache_root, compiler_id, digest, locked
from ..core.errors import RNNPoolError
from ..core.files import atomic_write_text

REPO = pathlib.Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
APP_DIR = FIRMWARE_DIR / "src"
PLATFORM_DIR = FIRMWARE_DIR / "platform"

CC, CXX, AR, SIZE = "arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-ar", "arm-none-eabi-size"
CPU_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mlittle-endian")
# TFLM's Makefile flags for TARGET=cortex_m_generic OPTIMIZED_KERNEL_DIR=cmsis_nn
# BUILD_TYPE=release_with_logs (error messages kept: the firmware prints them).
TFLM_DEFINES = (
    "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON", "-DCMSIS_NN", "-DKERNELS_OPTIMIZED_FOR_SPEED",
    "-DNDEBUG", "-DTF_LITE_MCU_DEBUG_LOG", "-DCPU_M4=1", '-DCMSIS_DEVICE_ARM_CORTEX_M_XX_HEADER_FILE="ARMCM4.h"',
    "-DARMCM4", "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0")
COMMON_FLAGS = ("-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections", "-fdata-sections",
                "-fmessage-length=0", "-fomit-frame-pointer", "-funsigned-char")
CXX_FLAGS = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
C_FLAGS = ("-std=c17",)
CORE_OPT, KERNEL_OPT, THIRD_PARTY_KERNEL_OPT = "-Os", "-O2", "-O2"
APP_OPT = "-O2"
APP_WARNINGS = ("-Wall", "-Wextra", "-Wno-unused-parameter", "-Wdouble-promotion", "-Wvla")
LINK_FLAGS = ("--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections")


@dataclasses.dataclass(frozen=True)
class Platform:
    """A memory map + start-up + output channel the firmware can be linked for."""

    name: str
    board: str                    # the rnnpool_tflm.core.boards name whose memory this is
    linker_script: str            # relative to firmware/platform
    sources: Tuple[str, ...]      # relative to firmware/platform
    defines: Tuple[str, ...]
    clock_hz: int
    qemu_machine: Optional[str] = None
    sram_bytes: int = 0           # the arena's block (what "fill" mode gives the arena at most)


_QEMU_SOURCES = ("startup_cm4.c", "semihosting.c", "cycle_counter.c")
_BOARD_SOURCES = ("startup_cm4.c", "boards/uart_stm32f4.c", "cycle_counter.c")

PLATFORMS: Dict[str, Platform] = {p.name: p for p in (
    Platform("netduinoplus2", "qemu_netduinoplus2", "stm32f405_qemu.ld", _QEMU_SOURCES,
             ("RNNPOOL_QEMU", "RNNPOOL_CORE_CLOCK_HZ=168000000"), 168_000_000, "netduinoplus2", 128 * 1024),
    Platform("mps2-an386", "qemu_mps2_an386", "mps2_an386_qemu.ld", _QEMU_SOURCES,
             ("RNNPOOL_QEMU", "RNNPOOL_CORE_CLOCK_HZ=25000000"), 25_000_000, "mps2-an386", 4 * 1024 * 1024),
    # The real boards (PlatformIO environments of the same names); built here for sizes.
    Platform("nucleo_f446re", "nucleo_f446re", "boards/stm32f446re.ld", _BOARD_SOURCES,
             ("RNNPOOL_BOARD_NUCLEO_F446RE", "RNNPOOL_CORE_CLOCK_HZ=180000000"), 180_000_000, None, 128 * 1024),
    Platform("disco_f407vg", "disco_f407vg", "boards/stm32f407vg.ld", _BOARD_SOURCES,
             ("RNNPOOL_BOARD_DISCO_F407VG", "RNNPOOL_CORE_CLOCK_HZ=168000000"), 168_000_000, None, 128 * 1024),
    Platform("nucleo_f429zi", "nucleo_f429zi", "boards/stm32f429zi.ld", _BOARD_SOURCES,
             ("RNNPOOL_BOARD_NUCLEO_F429ZI", "RNNPOOL_CORE_CLOCK_HZ=180000000"), 180_000_000, None, 192 * 1024),
    Platform("nucleo_f439zi", "nucleo_f439zi", "boards/stm32f439zi.ld", _BOARD_SOURCES,
             ("RNNPOOL_BOARD_NUCLEO_F439ZI", "RNNPOOL_CORE_CLOCK_HZ=180000000"), 180_000_000, None, 192 * 1024),
)}
QEMU_MACHINES = tuple(p.name for p in PLATFORMS.values() if p.qemu_machine)


def get_platform(name: str) -> Platform:
    key = str(name).strip().lower()
    key = {"mps2_an386": "mps2-an386", "qemu_mps2_an386": "mps2-an386",
           "qemu_netduinoplus2": "netduinoplus2"}.get(key, key)
    if key in PLATFORMS:
        return PLATFORMS[key]
    raise RNNPoolError(f"unknown firmware platform {name!r}; valid: {', '.join(PLATFORMS)}")


# ---- tools and cache ---------------------------------------------------------------------------

def missing_tools() -> List[str]:
    return [t for t in (CC, CXX, AR, SIZE) if shutil.which(t) is None]


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise RNNPoolError(f"missing {', '.join(missing)}: install Debian's gcc-arm-none-eabi, "
                           "libnewlib-arm-none-eabi and libstdc++-arm-none-eabi-newlib")


# ---- compiling ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CompileJob:
    source: pathlib.Path
    obj: pathlib.Path
    command: Tuple[str, ...]


def _compile_command(source: pathlib.Path, obj: pathlib.Path, opt: str, includes: Sequence[pathlib.Path],
                     extra: Sequence[str] = ()) -> Tuple[str, ...]:
    cxx = source.suffix in (".cc", ".cpp")
    lang = CXX_FLAGS if cxx else C_FLAGS
    return ((CXX if cxx else CC), *CPU_FLAGS, *lang, *COMMON_FLAGS, *TFLM_DEFINES, opt, *extra,
            *(f"-I{d}" for d in includes), "-c", str(source), "-o", str(obj))


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
        raise RNNPoolError(f"compiling {job.source} failed ({len(failures)} file(s) failed):\n"
                           f"{err.strip()[-4000:]}")


def _workers(jobs: Optional[int]) -> int:
    return jobs or os.cpu_count() or 1


# ---- the TFLM library --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TflmLibrary:
    path: pathlib.Path            # libtflm.a
    key: str
    root: pathlib.Path            # TFLM_DIR
    include_dirs: Tuple[pathlib.Path, ...]
    files: int
    build_seconds: float          # when it was built
    cached: bool                  # True: this call reused it


def _library_key(root: pathlib.Path, sources: tflm_sources.LibrarySources) -> str:
    stamps = []
    for rel in sources.all():
        st = (root / rel).stat()
        stamps.append((rel, st.st_size, st.st_mtime_ns))
    return digest("tflm-lib-v1", str(root), tflm_sources.tflm_commit(root), compiler_id(CXX), CPU_FLAGS,
                   TFLM_DEFINES, COMMON_FLAGS, CXX_FLAGS, C_FLAGS, CORE_OPT, KERNEL_OPT, THIRD_PARTY_KERNEL_OPT,
                   stamps)


def tflm_library(root: Optional[pathlib.Path] = None, jobs: Optional[int] = None,
                 log: Optional[Callable[[str], None]] = None) -> TflmLibrary:
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
        for group, opt in ((sources.core, CORE_OPT), (sources.kernels, KERNEL_OPT),
                           (sources.third_party_kernels, THIRD_PARTY_KERNEL_OPT)):
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
        atomic_write_text(info_path, json.dumps({"files": len(jobs_list), "build_seconds": round(seconds, 1),
                                         "tflm_dir": str(root), "commit": tflm_sources.tflm_commit(root)}))
        return TflmLibrary(lib, key, root, includes, len(jobs_list), seconds, False)


# ---- the firmware ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FirmwareBuild:
    elf: pathlib.Path
    platform: Platform
    sections: Dict[str, int]      # ELF section -> bytes
    library: TflmLibrary
    seconds: float

    @property
    def flash_bytes(self) -> int:
        """Everything stored in flash: code, constants (the model), .data's initial values."""
        return sum(self.sections.get(s, 0) for s in (".isr_vector", ".text", ".ARM.extab", ".ARM.exidx", ".data"))

    @property
    def static_ram_bytes(self) -> int:
        """RAM the image reserves, stack and arena excluded: .data + .bss + .ccm."""
        return sum(self.sections.get(s, 0) for s in (".data", ".bss", ".ccm"))

    @property
    def arena_section_bytes(self) -> int:
        return self.sections.get(".arena", 0)

    @property
    def stack_bytes(self) -> int:
        return self.sections.get(".stack", 0)


def op_sources() -> List[pathlib.Path]:
    """The custom ops compiled from custom_ops/: C cores and TFLM registrations (not the
    host-only Python registerers); and the detector post-processing (custom_ops/detection)."""
    return (sorted(OP_DIR.glob("*.c")) + [OP_DIR / "rnnpool_tflm.cc"] + sorted(INVRES_DIR.glob("*.c"))
            + [INVRES_DIR / "inverted_residual_tflm.cc", INVRES_DIR / "inverted_residual_options.cc"]
            + sorted(DETECTION_DIR.glob("*.c")))


def app_sources() -> List[pathlib.Path]:
    return sorted(p for p in APP_DIR.iterdir() if p.suffix in (".c", ".cc"))


def _header_fingerprint(dirs: Iterable[pathlib.Path]) -> List[Tuple[str, str]]:
    prints = []
    for d in dirs:
        for path in sorted(d.rglob("*.h")):
            prints.append((str(path), hashlib.sha256(path.read_bytes()).hexdigest()))
    return prints


def build_firmware(generated_dir: pathlib.Path, platform: str, out_dir: pathlib.Path,
                   defines: Sequence[str] = (), tflm_root: Optional[pathlib.Path] = None,
                   jobs: Optional[int] = None, log: Optional[Callable[[str], None]] = None) -> FirmwareBuild:
    """Compiles and links the firmware for one model (its generated sources) and platform."""
    start = time.monotonic()
    target = get_platform(platform)
    generated_dir = pathlib.Path(generated_dir).resolve()
    if not (generated_dir / "model_data.h").is_file():
        raise RNNPoolError(f"{generated_dir} holds no exported model (model_data.h is missing): "
                           "run `rnnpool-tflm export` first")
    library = tflm_library(tflm_root, jobs=jobs, log=log)
    includes = [APP_DIR, generated_dir, OP_DIR, INVRES_DIR, DETECTION_DIR, PLATFORM_DIR, *library.include_dirs]
    extra = (*APP_WARNINGS, *(f"-D{d}" for d in (*target.defines, *defines)))
    # Only the app and the generated sources see the generated headers: the op and the
    # platform objects stay cached from one model to the next.
    project_headers = _header_fingerprint([APP_DIR, OP_DIR, INVRES_DIR, DETECTION_DIR, PLATFORM_DIR])
    model_headers = _header_fingerprint([generated_dir])
    obj_cache = cache_root() / "obj"
    sources = (app_sources() + op_sources() + sorted(generated_dir.glob("*.cc"))
               + [PLATFORM_DIR / s for s in target.sources])
    jobs_list, objs = [], []
    for source in sources:
        if not source.is_file():
            raise RNNPoolError(f"firmware source {source} is missing")
        # The key: the command with the (often temporary) generated folder named neutrally,
        # the source's content and the headers it can see.
        probe = [arg.replace(str(generated_dir), "<generated>")
                 for arg in _compile_command(source, pathlib.Path("OBJ"), APP_OPT, includes, extra)]
        sees_model = source.parent in (APP_DIR, generated_dir)
        key = digest("fw-obj-v1", library.key, probe, hashlib.sha256(source.read_bytes()).hexdigest(),
                      project_headers, model_headers if sees_model else None)
        obj = obj_cache / key[:2] / f"{key[2:20]}-{source.stem}.o"
        objs.append(obj)
        if not obj.is_file():
            jobs_list.append(CompileJob(source, obj, _compile_command(source, obj, APP_OPT, includes, extra)))
    _run_jobs(jobs_list, _workers(jobs))

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / "firmware.elf"
    cmd = [CXX, *CPU_FLAGS, "-T", str(PLATFORM_DIR / target.linker_script), *LINK_FLAGS,
           f"-Wl,-Map={out_dir / 'firmware.map'}", *map(str, objs), str(library.path), "-lm", "-o", str(elf)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RNNPoolError(f"linking the firmware for {target.name} failed:\n{done.stderr.strip()[-4000:]}")
    return FirmwareBuild(elf, target, elf_sections(elf), library, time.monotonic() - start)


def elf_sections(elf: pathlib.Path) -> Dict[str, int]:
    done = subprocess.run([SIZE, "-A", str(elf)], capture_output=True, text=True, check=True)
    sections = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].isdigit() and parts[0].startswith("."):
            sections[parts[0]] = int(parts[1])
    return sections
