"""firmware/platform/cortex_m4_core.h: the core registers under CMSIS-Core's names, from
CMSIS-Core (TFLM's downloads) when it is on the include path, else from the header's own
definitions -- which must sit at the ARMv7-M architectural addresses and equal CMSIS-Core's."""

import os
import pathlib
import shutil
import subprocess

import pytest

from rnnpool_tflm.deploy import build as firmware_build
from rnnpool_tflm.toolchain import tflm_tree

PLATFORM = firmware_build.PLATFORM_DIR
PROBE = pathlib.Path(__file__).parent / "m4" / "cortex_m4_core_probe.c"
# The flags the firmware build compiles the platform code with, warnings as errors.
FLAGS = (
    *firmware_build.CPU_FLAGS,
    *firmware_build.C_FLAGS,
    *firmware_build.TFLM_DEFINES,
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
)

needs_gcc = pytest.mark.skipif(
    shutil.which(firmware_build.CC) is None, reason=f"{firmware_build.CC} not installed (CI installs gcc-arm-none-eabi)"
)
needs_cmsis = pytest.mark.skipif(
    not os.environ.get(tflm_tree.TFLM_ENV), reason="TFLM_DIR is not set (CMSIS-Core comes with TFLM's downloads)"
)


def _compile(source: pathlib.Path, includes, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [firmware_build.CC, *FLAGS, *extra, *(f"-I{d}" for d in includes), str(source)], capture_output=True, text=True
    )


def _cmsis_dirs():
    return tflm_tree.cmsis_core_dirs(tflm_tree.tflm_dir())


# The ARMv7-M Architecture Reference Manual (ARM DDI 0403E): B3.2 (SCB, CPACR), B3.3 (SysTick),
# C1.6 (debug registers, DEMCR), C1.8 (DWT) -- addresses and bits as the manual lists them.
ARCHITECTURAL = {
    "SCB_BASE + offsetof(SCB_Type, CPACR)": 0xE000ED88,
    "SysTick_BASE + offsetof(SysTick_Type, CTRL)": 0xE000E010,
    "SysTick_BASE + offsetof(SysTick_Type, LOAD)": 0xE000E014,
    "SysTick_BASE + offsetof(SysTick_Type, VAL)": 0xE000E018,
    "SysTick_BASE + offsetof(SysTick_Type, CALIB)": 0xE000E01C,
    "SysTick_CTRL_ENABLE_Msk": 1 << 0,
    "SysTick_CTRL_TICKINT_Msk": 1 << 1,
    "SysTick_CTRL_CLKSOURCE_Msk": 1 << 2,
    "SysTick_LOAD_RELOAD_Msk": (1 << 24) - 1,
    "DWT_BASE + offsetof(DWT_Type, CTRL)": 0xE0001000,
    "DWT_BASE + offsetof(DWT_Type, CYCCNT)": 0xE0001004,
    "DWT_CTRL_CYCCNTENA_Msk": 1 << 0,
    "DCB_BASE + offsetof(DCB_Type, DEMCR)": 0xE000EDFC,
    "DCB_DEMCR_TRCENA_Msk": 1 << 24,
}


def _architectural_probe(tmp_path: pathlib.Path) -> pathlib.Path:
    lines = [
        "#include <stddef.h>",
        '#include "cortex_m4_core.h"',
        *(f'_Static_assert(({expr}) == {value:#x}UL, "{expr}");' for expr, value in ARCHITECTURAL.items()),
    ]
    path = tmp_path / "architectural.c"
    path.write_text("\n".join(lines) + "\n")
    return path


@needs_gcc
def test_without_cmsis_core_the_registers_sit_at_their_architectural_addresses(tmp_path):
    probe = _architectural_probe(tmp_path)
    done = _compile(probe, [PLATFORM], "-fsyntax-only", "-dM", "-E")
    assert done.returncode == 0, done.stderr
    assert "RNNPOOL_CORE_FROM_CMSIS" not in done.stdout  # the header's own definitions were used
    done = _compile(probe, [PLATFORM], "-fsyntax-only")
    assert done.returncode == 0, done.stderr


@needs_gcc
@pytest.mark.parametrize("defines", [("-DRNNPOOL_QEMU",), ()], ids=["qemu-systick", "board-dwt"])
def test_the_platform_code_builds_without_cmsis_core(tmp_path, defines):
    """What the M4 kernel harnesses link (no TFLM_DIR): start-up and both cycle counters."""
    for source in ("startup_cm4.c", "cycle_counter.c"):
        obj = tmp_path / f"{source}.o"
        done = _compile(
            PLATFORM / source, [PLATFORM], "-DRNNPOOL_CORE_CLOCK_HZ=25000000u", *defines, "-c", "-o", str(obj)
        )
        assert done.returncode == 0, done.stderr
    text = subprocess.run(
        [firmware_build.OBJDUMP, "-d", str(tmp_path / "startup_cm4.c.o")], capture_output=True, text=True, check=True
    ).stdout
    assert "dsb" in text and "isb" in text  # the FPU enable is followed by the barriers


@needs_gcc
@needs_cmsis
def test_the_fallback_equals_cmsis_core():
    assert PROBE.is_file()
    done = _compile(PROBE, [PLATFORM, *_cmsis_dirs()], "-fsyntax-only")
    assert done.returncode == 0, done.stderr


@needs_gcc
@needs_cmsis
def test_the_probe_catches_a_fallback_that_drifted(tmp_path):
    """The same probe against a copy of the header with a wrong address and a wrong offset."""
    header = (PLATFORM / "cortex_m4_core.h").read_text()
    drifted = header.replace("#define RNNPOOL_CORE_DWT_BASE 0xE0001000UL", "#define RNNPOOL_CORE_DWT_BASE 0xE0001004UL")
    drifted = drifted.replace("RESERVED_0x000_0x084[34]", "RESERVED_0x000_0x084[33]")
    assert drifted.count("RNNPOOL_CORE_DWT_BASE 0xE0001004UL") == 1 and "[33]" in drifted
    (tmp_path / "cortex_m4_core.h").write_text(drifted)
    done = _compile(PROBE, [tmp_path, PLATFORM, *_cmsis_dirs()], "-fsyntax-only")
    assert done.returncode != 0
    assert "DWT_BASE != RNNPOOL_CORE_DWT_BASE" in done.stderr
    assert "SCB_Type.CPACR: offsets differ" in done.stderr


@needs_gcc
@needs_cmsis
@pytest.mark.parametrize("defines", [("-DRNNPOOL_QEMU",), ()], ids=["qemu-systick", "board-dwt"])
def test_the_platform_code_is_the_same_machine_code_with_and_without_cmsis_core(tmp_path, defines):
    def disassembly(source: str, includes, tag: str) -> str:
        obj = tmp_path / f"{tag}-{source}.o"
        done = _compile(
            PLATFORM / source, includes, "-DRNNPOOL_CORE_CLOCK_HZ=25000000u", *defines, "-c", "-o", str(obj)
        )
        assert done.returncode == 0, done.stderr
        text = subprocess.run(
            [firmware_build.OBJDUMP, "-d", str(obj)], capture_output=True, text=True, check=True
        ).stdout
        return text.split("Disassembly of section", 1)[1]  # without the header naming the file

    for source in ("startup_cm4.c", "cycle_counter.c"):
        assert disassembly(source, [PLATFORM], "own") == disassembly(source, [PLATFORM, *_cmsis_dirs()], "cmsis")
