"""Bare-metal Cortex-M4 builds with Debian's arm-none-eabi-gcc, runs in QEMU's
netduinoplus2 (STM32F405) with semihosting output, and the kernel harness.

The firmware's platform code (firmware/platform: start-up, semihosting, cycle counter)
is linked in. It names the core's registers as CMSIS-Core does, through
firmware/platform/cortex_m4_core.h; CMSIS-Core itself (TFLM's downloads) is not on these
builds' include path, so they take that header's own definitions (checked against
CMSIS-Core by tests/test_cortex_m4_core.py) and need no TFLM_DIR.

Under ``-icount shift=0`` QEMU advances virtual time by 1 ns per executed
instruction, so the SysTick count of a run is deterministic; a calibration
loop of known length in the same ELF converts ticks to instructions.

The kernel harness (tests/m4: harness.c, main_m4.c) runs vector cases
embedded as C arrays (:func:`cases_header`) and prints one line per case
(:func:`parse_harness_output`); the M4 tests and ``rnnpool-tflm bench kernel``
use it through :func:`run_kernel_cases`.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import subprocess
import tempfile
from typing import Iterable, List, Optional, Sequence

import numpy as np

from ..core.errors import RNNPoolError

REPO = pathlib.Path(__file__).resolve().parents[2]
PLATFORM_DIR = REPO / "firmware" / "platform"
HARNESS_DIR = REPO / "tests" / "m4"

CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
MACHINE = "netduinoplus2"
CPU_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard")
C_FLAGS = (
    "-std=c99",
    "-O2",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Wextra",
    "-Werror=implicit-function-declaration",
)
LINK_FLAGS = ("--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections", "-lm")
PLATFORM_SOURCES = ("startup_cm4.c", "semihosting.c", "cycle_counter.c")
QEMU_FLAGS = (
    "-nographic",
    "-monitor",
    "none",
    "-serial",
    "none",
    "-semihosting-config",
    "enable=on,target=native",
    "-icount",
    "shift=0",
)


def missing_tools() -> List[str]:
    """The Arm toolchain / QEMU programs that are not on PATH."""
    return [tool for tool in (CC, QEMU) if shutil.which(tool) is None]


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise RNNPoolError(
            f"{', '.join(missing)} not found: install Debian's gcc-arm-none-eabi, "
            "libnewlib-arm-none-eabi and qemu-system-arm (./dev setup does it as root)"
        )


def compile_command(
    sources: Iterable[pathlib.Path],
    include_dirs: Iterable[pathlib.Path],
    out: pathlib.Path,
    defines: Sequence[str] = (),
    opt: Optional[str] = None,
) -> List[str]:
    """The arm-none-eabi-gcc command that builds sources + the QEMU platform into a semihosting ELF."""
    sources = [pathlib.Path(s) for s in sources] + [PLATFORM_DIR / s for s in PLATFORM_SOURCES]
    flags = [f for f in C_FLAGS if not (opt and f.startswith("-O"))] + ([opt] if opt else [])
    return [
        CC,
        *CPU_FLAGS,
        *flags,
        "-DRNNPOOL_QEMU",
        *(f"-D{d}" for d in defines),
        *(f"-I{d}" for d in [*include_dirs, PLATFORM_DIR]),
        *map(str, sources),
        "-T",
        str(PLATFORM_DIR / "stm32f405_qemu.ld"),
        f"-L{PLATFORM_DIR}",
        *LINK_FLAGS,
        "-o",
        str(out),
    ]


def build_elf(
    sources: Iterable[pathlib.Path],
    include_dirs: Iterable[pathlib.Path],
    out: pathlib.Path,
    defines: Sequence[str] = (),
    opt: Optional[str] = None,
) -> pathlib.Path:
    require_tools()
    cmd = compile_command(sources, include_dirs, out, defines, opt)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RNNPoolError(f"{CC} failed:\n{done.stderr.strip()[-4000:]}")
    return pathlib.Path(out)


@dataclasses.dataclass
class QemuRun:
    exit_code: int
    output: str  # what the program printed (semihosting writes to QEMU's stdout/stderr)


def run_qemu(elf: pathlib.Path, timeout: float = 300.0) -> QemuRun:
    """Runs a semihosting ELF to completion; main()'s return value is the exit code."""
    require_tools()
    cmd = [QEMU, "-M", MACHINE, *QEMU_FLAGS, "-kernel", str(elf)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RNNPoolError(f"QEMU did not finish within {timeout:.0f} s running {elf}") from None
    return QemuRun(done.returncode, done.stdout + done.stderr)


def elf_sizes(elf: pathlib.Path) -> dict:
    """Section sizes of an ELF (arm-none-eabi-size -A)."""
    done = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True)
    sizes = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    return sizes


# -- the kernel harness ------------------------------------------------------------------------


@dataclasses.dataclass
class HarnessCase:
    """One int8 vector case: parameters (a QuantizedRNNPool), int8 NHWC input, golden output.
    `inplace`: run it with the output overlapping the input at the op's in-place lag."""

    params: object
    x: np.ndarray
    expected: np.ndarray
    inplace: bool = False


def _c_array(name: str, values, ctype: str) -> str:
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":
        body = ",".join(f"{float(v)!r}f" for v in flat.astype(np.float32))
    else:
        body = ",".join(map(str, flat.astype(np.int64).tolist()))
    return f"static const {ctype} {name}[{max(flat.size, 1)}] = {{{body or '0'}}};\n"


def cases_header(cases: Sequence[HarnessCase]) -> str:
    """cases.h for tests/m4/main_m4.c: the cases as C arrays and the buffer sizes they need."""
    from . import native  # the host kernel sizes the buffers (same sizes as on the M4)

    arrays, entries = [], []
    emitted = {}  # identical arrays (a map shared by several cases) are emitted once
    prepared = scratch = output = 8

    def array(name: str, values, ctype: str) -> str:
        key = (ctype, np.asarray(values).shape, np.ascontiguousarray(values).tobytes())
        if key not in emitted:
            emitted[key] = name
            arrays.append(_c_array(name, values, ctype))
        return emitted[key]

    for i, case in enumerate(cases):
        p = case.params
        cfg = native.make_config(p.config, case.x.shape)
        p_bytes, s_bytes = native.buffer_bytes(cfg, "int8")
        o_bytes = case.expected.size
        if case.inplace:  # input and output overlapped at the lag in the output buffer (tests/m4/harness.c)
            lag = native.inplace_lag(cfg)
            o_bytes = max(max(0, -lag) + case.expected.size, max(0, -lag) + lag + case.x.size)
        prepared, scratch, output = max(prepared, p_bytes), max(scratch, s_bytes), max(output, o_bytes)
        n = {
            suffix: array(f"c{i}_{suffix}", values, ctype)
            for suffix, values, ctype in (
                ("w1", p.w1, "int8_t"),
                ("w1s", p.w1_scale, "float"),
                ("u1", p.u1, "int8_t"),
                ("u1s", p.u1_scale, "float"),
                ("b1", p.bias1, "int32_t"),
                ("w2", p.w2, "int8_t"),
                ("w2s", p.w2_scale, "float"),
                ("u2", p.u2, "int8_t"),
                ("u2s", p.u2_scale, "float"),
                ("b2", p.bias2, "int32_t"),
                ("sc", p.scalars, "int16_t"),
                ("in", case.x, "int8_t"),
                ("out", case.expected, "int8_t"),
            )
        }
        fields = ", ".join(str(getattr(cfg, name)) for name in native.CONFIG_FIELDS)
        entries.append(
            f"  {{{{{fields}}}, HARNESS_INT8,\n"
            f"   {{{float(p.input_scale)!r}f, {int(p.input_zero_point)}, {float(p.output_scale)!r}f, "
            f"{int(p.output_zero_point)},\n"
            f"    {n['w1']}, {n['w1s']}, {p.w1_scale.size}, {n['u1']}, {n['u1s']}, {p.u1_scale.size}, {n['b1']},\n"
            f"    {n['w2']}, {n['w2s']}, {p.w2_scale.size}, {n['u2']}, {n['u2s']}, {p.u2_scale.size}, {n['b2']}, "
            f"{n['sc']}}},\n"
            f"   {{0, 0, 0, 0, 0, 0, 0}}, {n['in']}, {n['out']}, {case.expected.size}u, 0.0f, "
            f"{1 if case.inplace else 0}}}"
        )
    return (
        "/* Generated by rnnpool_tflm.m4_toolchain.cases_header; do not edit. */\n"
        "#include <stddef.h>\n#include <stdint.h>\n#include \"harness.h\"\n\n"
        f"#define HARNESS_CASE_COUNT {len(cases)}\n#define HARNESS_PREPARED_BYTES {prepared}u\n"
        f"#define HARNESS_SCRATCH_BYTES {scratch}u\n#define HARNESS_OUTPUT_BYTES {output}u\n\n"
        + "".join(arrays)
        + "\nstatic const harness_case g_cases[HARNESS_CASE_COUNT] = {\n"
        + ",\n".join(entries)
        + "\n};\n"
    )


@dataclasses.dataclass
class CaseResult:
    ok: bool
    status: str
    stage: str
    mismatches: int
    ticks: int
    prepared_bytes: int
    scratch_bytes: int
    instructions: float  # of the eval call, from the calibration


@dataclasses.dataclass
class HarnessRun:
    instructions_per_tick: float
    results: List[CaseResult]
    exit_code: int
    output: str


_CALIBRATION = re.compile(r"^calibration instructions=(\d+) ticks=(\d+)$", re.M)
_CASE = re.compile(
    r"^case (\d+) (ok|FAIL) status=(\S+) stage=(.+?) mismatches=(\d+) ticks=(\d+) "
    r"prepared=(\d+) scratch=(\d+)$",
    re.M,
)


def parse_harness_output(text: str, case_count: int, exit_code: int = 0) -> HarnessRun:
    """Reads what main_m4.c printed; raises RNNPoolError if any line is missing."""
    calibration = _CALIBRATION.search(text)
    cases = list(_CASE.finditer(text))
    if calibration is None or len(cases) != case_count or [int(m[1]) for m in cases] != list(range(case_count)):
        raise RNNPoolError(f"kernel harness output incomplete (exit status {exit_code}):\n{text[-3000:]}")
    per_tick = int(calibration[1]) / int(calibration[2])
    results = [
        CaseResult(m[2] == "ok", m[3], m[4], int(m[5]), int(m[6]), int(m[7]), int(m[8]), int(m[6]) * per_tick)
        for m in cases
    ]
    return HarnessRun(per_tick, results, exit_code, text)


def kernel_sources() -> List[pathlib.Path]:
    from ..core.sources import source_dir

    return sorted(source_dir().glob("*.c"))


def run_kernel_cases(
    cases: Sequence[HarnessCase],
    workdir: Optional[pathlib.Path] = None,
    timeout: float = 600.0,
    opt: Optional[str] = None,
) -> HarnessRun:
    """Builds tests/m4's harness with these cases and the kernel (DSP path), runs it in QEMU."""
    require_tools()
    if not (HARNESS_DIR / "main_m4.c").is_file():
        raise RNNPoolError(
            f"the kernel harness sources are missing ({HARNESS_DIR}); "
            "this needs a checkout of the rnnpool-tflm repository"
        )
    from ..core.sources import source_dir

    with tempfile.TemporaryDirectory(prefix="rnnpool_m4_") as tmp:
        work = pathlib.Path(workdir) if workdir is not None else pathlib.Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        header = work / "cases.h"
        header.write_text(cases_header(cases))
        elf = build_elf(
            [HARNESS_DIR / "main_m4.c", HARNESS_DIR / "harness.c", *kernel_sources()],
            [work, HARNESS_DIR, source_dir(), source_dir("common")],
            work / "kernel_harness.elf",
            opt=opt,
        )
        run = run_qemu(elf, timeout=timeout)
    return parse_harness_output(run.output, len(cases), run.exit_code)
