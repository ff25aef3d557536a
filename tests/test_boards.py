"""The board record (rnnpool_tflm.core.boards) against the other forms of the same facts:
the firmware's linker scripts, platformio.ini, the C code's defines, and facts ST's
datasheets state per chip family or encode in the part number; and the verdict arithmetic."""

import configparser
import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from rnnpool_tflm.core.boards import BOARDS, HARDWARE_BOARDS, QEMU_MACHINES, STACK_BYTES, get_board, verdict
from rnnpool_tflm.core.errors import RNNPoolError
from rnnpool_tflm.deploy.build import PLATFORM_DIR, board_defines

KIB = 1024
FIRMWARE = PLATFORM_DIR.parent


def _size(text: str) -> int:
    value = text.strip()
    scale = {"K": KIB, "M": KIB * KIB}.get(value[-1].upper(), 1)
    return int(value.rstrip("KkMm"), 0) * scale


def linker_memory(script: pathlib.Path):
    """(regions {name: (origin, length)}, STACK alias target, INCLUDEd files) of a linker script."""
    text = re.sub(r"/\*.*?\*/", "", script.read_text(), flags=re.S)
    memory = re.search(r"MEMORY\s*\{(.*?)\}", text, re.S).group(1)
    regions = {
        name: (int(origin, 0), _size(length))
        for name, origin, length in re.findall(
            r"(\w+)\s*\([rwx]+\)\s*:\s*ORIGIN\s*=\s*(\w+)\s*,\s*LENGTH\s*=\s*(\w+)", memory
        )
    }
    alias = dict(re.findall(r'REGION_ALIAS\("(\w+)",\s*(\w+)\)', text))
    return regions, alias.get("STACK"), re.findall(r"INCLUDE\s+(\S+)", text)


@pytest.mark.parametrize("name", list(BOARDS))
def test_the_linker_script_has_the_record_memory_map(name):
    board = get_board(name)
    regions, stack, includes = linker_memory(PLATFORM_DIR / board.linker_script)
    assert includes == ["sections.ld"]
    assert regions["FLASH"] == (board.flash.base, board.flash.size)
    assert regions["SRAM"] == (board.arena_block.base, board.arena_block.size)
    # The stack: in the arena's block (the script aliases STACK to SRAM) or in its own block.
    stack_block = board.block(board.stack_region)
    assert regions[stack] == (stack_block.base, stack_block.size)
    assert (stack == "SRAM") == board.stack_shares_arena_block
    assert set(regions) == {"FLASH", "SRAM", stack}  # no region the record does not know


def test_the_shared_sections_reserve_the_record_stack():
    text = (PLATFORM_DIR / "sections.ld").read_text()
    default = re.search(r"_stack_size = DEFINED\(_stack_size\) \? _stack_size : (\w+);", text).group(1)
    assert _size(default) == STACK_BYTES == get_board("nucleo_f446re").stack_bytes
    for name in ("MEMORY", "REGION_ALIAS"):  # the boards' scripts own those
        assert name not in re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def test_platformio_environments_are_the_hardware_boards():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(FIRMWARE / "platformio.ini")
    envs = {section.split(":", 1)[1]: ini[section] for section in ini.sections() if section.startswith("env:")}
    assert sorted(envs) == sorted(HARDWARE_BOARDS)
    for name, env in envs.items():
        board = get_board(name)
        assert env["board"] == board.pio_board
        assert env["board_build.ldscript"] == f"platform/{board.linker_script}"
        # Clock, console and CPU defines come from the record (tools/pio_tflm.py), not the .ini.
        assert "RNNPOOL_" not in env.get("build_flags", "").replace("${env.build_flags}", "")
    assert "toolchain-gccarmnoneeabi@~1.120301.0" in ini["env"]["platform_packages"]


# Datasheet facts per STM32F4 line (DS8626, DS9405/DS9484, DS10693 Table 2; RM0090/RM0390
# 2.3 and 5.1.4): max core clock, contiguous SRAM at 0x2000_0000, CCM, over-drive.
FAMILY = {
    "STM32F40": (168, 128, 64, False),
    "STM32F42": (180, 192, 64, True),
    "STM32F43": (180, 192, 64, True),
    "STM32F446": (180, 128, 0, True),
}
# ST's part numbering: the letter after the pin-count letter gives the flash size.
FLASH_CODE = {"C": 256, "E": 512, "G": 1024, "I": 2048}
PIN_CODE = {"R": 64, "V": 100, "Z": 144}


@pytest.mark.parametrize("name", [b.name for b in BOARDS.values() if b.mcu.startswith("STM32")])
def test_stm32_boards_match_their_chip(name):
    board = get_board(name)
    part = re.fullmatch(r"(STM32F4\d\d)([A-Z])([A-Z])", board.mcu)
    family = next(v for k, v in FAMILY.items() if part.group(1).startswith(k))
    mhz, sram_kib, ccm_kib, overdrive = family
    assert board.clock_hz == mhz * 1_000_000
    assert board.flash.base == 0x0800_0000 and board.flash.size == FLASH_CODE[part.group(3)] * KIB
    assert board.arena_block.base == 0x2000_0000 and board.arena_block.size == sram_kib * KIB
    assert board.ccm_bytes == ccm_kib * KIB
    assert board.overdrive == overdrive
    # The arena's block is the largest contiguous one; the stack goes to CCM where there is one.
    assert board.arena_block.size == board.largest_contiguous_ram
    assert board.stack_shares_arena_block == (ccm_kib == 0)


@pytest.mark.parametrize("name", [n for n in HARDWARE_BOARDS if n.startswith("nucleo")])
def test_the_nucleo_console_is_the_st_link_virtual_com_port(name):
    """Nucleo-64 (64-pin MCU): VCP on USART2 PA2 (UM1724 6.8); Nucleo-144: USART3 PD8 (UM1974 6.9)."""
    board = get_board(name)
    pins = PIN_CODE[re.fullmatch(r"STM32F4\d\d([A-Z])[A-Z]", board.mcu).group(1)]
    c = board.console
    assert (c.usart, c.tx_port, c.tx_pin) == {64: (2, "A", 2), 144: (3, "D", 8)}[pins]


def test_emulated_boards_and_names():
    assert set(QEMU_MACHINES) == {"netduinoplus2", "mps2-an386"}
    assert get_board("netduinoplus2") is get_board("qemu_netduinoplus2")
    mps2 = get_board("mps2-an386")
    assert mps2.emulated and mps2.arena_block.size == 4 * 1024 * KIB and not mps2.stack_shares_arena_block
    assert verdict(mps2, 3 * 1024 * KIB, 2 * 1024 * KIB).fits
    assert get_board(" NUCLEO-F446RE ").name == "nucleo_f446re"
    for board in BOARDS.values():
        assert (board.qemu_machine is not None) == board.emulated == (board.console is None)
        assert (board.pio_board is not None) == (not board.emulated)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
@pytest.mark.parametrize("name", HARDWARE_BOARDS)
def test_the_board_code_builds_from_the_record_defines(name, tmp_path):
    """uart_stm32f4.c takes its clock and console from the record's defines; its #error
    checks (whole MHz, over-drive above 168 MHz, USART2/3) pass for every board, and it
    does not build without them."""
    board = get_board(name)
    base = [
        "arm-none-eabi-gcc",
        "-mcpu=cortex-m4",
        "-mthumb",
        "-std=c17",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{PLATFORM_DIR}",
        "-c",
        str(PLATFORM_DIR / "boards" / "uart_stm32f4.c"),
        "-o",
        str(tmp_path / "u.o"),
    ]
    done = subprocess.run(base + [f"-D{d}" for d in board_defines(board)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(base, capture_output=True, text=True)
    assert done.returncode != 0 and "board defines missing" in done.stderr
    wrong = [d for d in board_defines(board) if not d.startswith("RNNPOOL_STM32_OVERDRIVE")]
    done = subprocess.run(
        base + [f"-D{d}" for d in wrong] + ["-DRNNPOOL_STM32_OVERDRIVE=0"], capture_output=True, text=True
    )
    assert (done.returncode != 0) == (board.clock_hz > 168_000_000)


def test_unknown_board_error_lists_the_valid_names():
    with pytest.raises(RNNPoolError) as info:
        get_board("arduino_uno")
    message = str(info.value)
    assert "arduino_uno" in message
    for name in BOARDS:
        assert name in message


def test_a_model_that_fits():
    v = verdict("nucleo_f446re", arena_bytes=100 * KIB, model_bytes=200 * KIB, other_ram=8 * KIB, other_flash=100 * KIB)
    assert v.fits and v.ram_fits and v.flash_fits
    assert v.ram_margin == (128 - 108) * KIB
    assert v.flash_margin == (512 - 300) * KIB
    assert "fits" in v.message() and "does not fit" not in v.message()


def test_the_arena_must_fit_the_largest_block_not_the_sum():
    board = get_board("nucleo_f429zi")
    arena = 200 * KIB  # below the 256 KB total, above the 192 KB contiguous block
    assert arena < board.ram_bytes
    v = verdict(board, arena, 10 * KIB)
    assert not v.ram_fits and v.flash_fits and not v.fits
    assert v.ram_margin == -8 * KIB
    assert "misses 8,192 B" in v.message()


def test_ram_and_flash_misses_are_reported_separately():
    v = verdict("disco_f407vg", arena_bytes=128 * KIB + 1, model_bytes=1024 * KIB + 5)
    assert (v.ram_fits, v.flash_fits) == (False, False)
    assert (v.ram_margin, v.flash_margin) == (-1, -5)
    exactly = verdict("disco_f407vg", arena_bytes=128 * KIB, model_bytes=1024 * KIB)
    assert exactly.fits and exactly.ram_margin == 0 == exactly.flash_margin
    assert verdict("disco_f407vg", np.int64(1000), np.int32(2000)).as_dict()["fits"] is True


@pytest.mark.parametrize("bad", [-1, 1.5, "12", None, True])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(RNNPoolError, match="arena_bytes"):
        verdict("nucleo_f446re", bad, 0)


def test_verdict_on_an_unknown_board():
    with pytest.raises(RNNPoolError, match="valid boards"):
        verdict("esp32", 1, 1)
