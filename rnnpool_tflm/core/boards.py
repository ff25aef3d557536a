"""THE board record: every fact about a target board the toolkit and the firmware use.

One `Board` per target holds its core clock, flash, RAM blocks, where the firmware's
linker script puts the data/arena and the stack, the linker script itself, the QEMU
machine (emulated boards), the PlatformIO board (real boards), the console UART and
the clock set-up the firmware needs. Everything else is derived from it or tested
against it: deploy/build.py's platforms and C defines (RNNPOOL_CORE_CLOCK_HZ, the UART
pins...), tools/pio_tflm.py's defines, and tests/test_boards.py compares the record with
firmware/platform/**/*.ld (MEMORY regions, stack placement) and firmware/platformio.ini.

The tensor arena is one array, so it must fit ONE contiguous SRAM block, not the sum of
all RAM. CCM (core-coupled memory, CPU-only, not reachable by DMA) is a separate block at
0x1000_0000 on the F405/F407/F429/F439; the firmware puts the stack there, so the whole
SRAM block is left to data and the arena. The F446 has no CCM: its stack shares the SRAM
block with the arena.

Sources (ST documents; section/table numbers of the revisions current in 2024):
- STM32F446xC/E datasheet DS10693, section 3.4/3.5 and Table 2 "features and
  peripheral counts": 512 KB flash, 128 KB SRAM (SRAM1 112 KB + SRAM2 16 KB), 4 KB
  backup SRAM, no CCM, 180 MHz. Reference manual RM0390, 2.3 "Embedded SRAM": SRAM1 at
  0x2000_0000, SRAM2 at 0x2001_C000 (contiguous).
- STM32F405xx/07xx datasheet DS8626, 3.4/3.5 and Table 2: 1 MB flash, 192 KB SRAM
  = 112 KB + 16 KB + 64 KB CCM data RAM, 168 MHz. RM0090, 2.3.1 "Embedded SRAM":
  SRAM1 0x2000_0000, SRAM2 0x2001_C000 (contiguous 128 KB), CCM 0x1000_0000.
- STM32F427xx/29xx datasheet DS9405 and STM32F437xx/39xx datasheet DS9484, 3.5 and
  Table 2: 2 MB flash, 256 KB SRAM = 112 + 16 + 64 KB + 64 KB CCM, 180 MHz. RM0090,
  2.3.1: on STM32F42xxx/43xxx SRAM3 follows SRAM2 at 0x2002_0000, so SRAM1+2+3 are one
  contiguous 192 KB block. RM0090 5.1.4 / RM0390 5.1.4: 180 MHz needs the regulator's
  over-drive mode (F42x/F43x/F446; their VOS field is 2 bits, the F405/F407's 1 bit).
- Boards: NUCLEO-F446RE / NUCLEO-F429ZI / NUCLEO-F439ZI (UM1724, UM1974) and
  STM32F4DISCOVERY (UM1472) carry exactly those MCUs (F407VGT6 on the Discovery). The
  Nucleo's ST-LINK virtual COM port is wired to USART2 PA2 (Nucleo-64, UM1724 6.8) and
  USART3 PD8 (Nucleo-144, UM1974 6.9); the Discovery's ST-LINK has no VCP: the console
  is USART2 TX on PA2, for a USB-serial adapter.
- Emulated: QEMU 7.2 `netduinoplus2` is an STM32F405RG (1 MB flash at 0x0800_0000);
  QEMU maps one 192 KB RAM at 0x2000_0000 and no CCM, so the linker script
  (firmware/platform/stm32f405_qemu.ld) keeps the real chip's 128 KB SRAM block and puts
  the 64 KB "CCM" in that RAM's last 64 KB: the record holds that placement, so the
  verdict uses the real chip's budget. QEMU `mps2-an386` (`info mtree`): 4 MB SSRAM1 at 0x0
  (code), 4 MB SSRAM2/3 at 0x2000_0000, 16 MB RAM at 0x2100_0000 (not adjacent); the
  FPGA image clocks the M4 at 25 MHz. Its linker script puts data and the arena in
  SSRAM2/3 and the stack in the 16 MB RAM, so the arena's limit there is 4 MB.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Dict, Optional, Tuple

from .errors import RNNPoolError

KIB = 1024
MIB = 1024 * KIB
# The firmware's stack (the linker scripts' default _stack_size, firmware/platform/sections.ld).
STACK_BYTES = 16 * KIB


@dataclasses.dataclass(frozen=True)
class MemoryBlock:
    """One contiguous memory region."""

    name: str
    base: int
    size: int
    dma: bool = True  # CCM is CPU-only

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclasses.dataclass(frozen=True)
class Console:
    """The USART the firmware prints on (STM32 boards): TX only, 115200 8N1, alternate function 7."""

    usart: int  # 2 or 3: USART2/USART3, both on APB1
    tx_port: str  # GPIO port letter
    tx_pin: int
    wiring: str  # where a person reads it


@dataclasses.dataclass(frozen=True)
class Board:
    name: str
    mcu: str
    description: str
    clock_hz: int
    flash: MemoryBlock
    ram_blocks: Tuple[MemoryBlock, ...]
    arena_region: str  # block of .data/.bss/.arena (the linker scripts' SRAM region)
    stack_region: str  # block of the stack (the linker scripts' STACK alias)
    linker_script: str  # relative to firmware/platform
    emulated: bool = False
    qemu_machine: Optional[str] = None
    pio_board: Optional[str] = None  # PlatformIO board id; its environment is named after the board
    console: Optional[Console] = None  # None: semihosting (QEMU)
    overdrive: bool = False  # STM32F42x/43x/446: PWR over-drive, 2-bit VOS
    stack_bytes: int = STACK_BYTES

    @property
    def flash_bytes(self) -> int:
        return self.flash.size

    @property
    def ram_bytes(self) -> int:
        """All RAM, CCM included (the number on the datasheet's first page)."""
        return sum(block.size for block in self.ram_blocks)

    @property
    def ccm_bytes(self) -> int:
        return sum(block.size for block in self.ram_blocks if block.name == "CCM")

    @property
    def largest_contiguous_ram(self) -> int:
        return max(block.size for block in self.ram_blocks)

    def block(self, name: str) -> MemoryBlock:
        return next(block for block in self.ram_blocks if block.name == name)

    @property
    def arena_block(self) -> MemoryBlock:
        """The block the arena must fit, with .data and .bss (and the stack where it is the same)."""
        return self.block(self.arena_region)

    @property
    def stack_shares_arena_block(self) -> bool:
        return self.stack_region == self.arena_region


def _stm32(
    name: str,
    mcu: str,
    description: str,
    clock_mhz: int,
    flash_kib: int,
    sram_kib: int,
    ccm_kib: int,
    linker_script: str,
    ccm_base: int = 0x1000_0000,
    **extra,
) -> Board:
    blocks = [MemoryBlock("SRAM", 0x2000_0000, sram_kib * KIB)]
    if ccm_kib:
        blocks.append(MemoryBlock("CCM", ccm_base, ccm_kib * KIB, dma=False))
    return Board(
        name,
        mcu,
        description,
        clock_mhz * 1_000_000,
        MemoryBlock("FLASH", 0x0800_0000, flash_kib * KIB),
        tuple(blocks),
        "SRAM",
        "CCM" if ccm_kib else "SRAM",
        linker_script,
        **extra,
    )


_NUCLEO64_VCP = Console(2, "A", 2, "ST-LINK virtual COM port (USART2, PA2)")
_NUCLEO144_VCP = Console(3, "D", 8, "ST-LINK virtual COM port (USART3, PD8)")

_BOARDS = (
    # SRAM1 112 KB + SRAM2 16 KB contiguous; no CCM: the stack shares SRAM.
    _stm32(
        "nucleo_f446re",
        "STM32F446RE",
        "ST NUCLEO-F446RE",
        180,
        512,
        112 + 16,
        0,
        "boards/stm32f446re.ld",
        pio_board="nucleo_f446re",
        console=_NUCLEO64_VCP,
        overdrive=True,
    ),
    # SRAM1 112 KB + SRAM2 16 KB contiguous; 64 KB CCM apart.
    _stm32(
        "disco_f407vg",
        "STM32F407VG",
        "ST STM32F4DISCOVERY",
        168,
        1024,
        112 + 16,
        64,
        "boards/stm32f407vg.ld",
        pio_board="disco_f407vg",
        console=Console(2, "A", 2, "USART2 TX on PA2: a 3.3 V USB-serial adapter (its ST-LINK has no VCP)"),
    ),
    # SRAM1 112 + SRAM2 16 + SRAM3 64 KB contiguous; 64 KB CCM apart.
    _stm32(
        "nucleo_f429zi",
        "STM32F429ZI",
        "ST NUCLEO-F429ZI",
        180,
        2048,
        112 + 16 + 64,
        64,
        "boards/stm32f429zi.ld",
        pio_board="nucleo_f429zi",
        console=_NUCLEO144_VCP,
        overdrive=True,
    ),
    _stm32(
        "nucleo_f439zi",
        "STM32F439ZI",
        "ST NUCLEO-F439ZI",
        180,
        2048,
        112 + 16 + 64,
        64,
        "boards/stm32f439zi.ld",
        pio_board="nucleo_f439zi",
        console=_NUCLEO144_VCP,
        overdrive=True,
    ),
    # The emulated STM32F405 (the real chip's budget; its "CCM" inside QEMU's RAM, see above).
    _stm32(
        "qemu_netduinoplus2",
        "STM32F405RG",
        "QEMU netduinoplus2 (emulated STM32F405)",
        168,
        1024,
        112 + 16,
        64,
        "stm32f405_qemu.ld",
        ccm_base=0x2002_0000,
        emulated=True,
        qemu_machine="netduinoplus2",
    ),
    Board(
        "qemu_mps2_an386",
        "CMSDK Cortex-M4 (AN386)",
        "QEMU mps2-an386 (emulated Cortex-M4 FPGA image)",
        25_000_000,
        MemoryBlock("SSRAM1", 0x0, 4 * MIB),
        (MemoryBlock("SSRAM2/3", 0x2000_0000, 4 * MIB), MemoryBlock("RAM", 0x2100_0000, 16 * MIB)),
        "SSRAM2/3",
        "RAM",
        "mps2_an386_qemu.ld",
        emulated=True,
        qemu_machine="mps2-an386",
    ),
)

BOARDS: Dict[str, Board] = {board.name: board for board in _BOARDS}
# The real boards (PlatformIO environments of the same names).
HARDWARE_BOARDS = tuple(board.name for board in _BOARDS if not board.emulated)
# The QEMU machines the firmware runs on.
QEMU_MACHINES = tuple(board.qemu_machine for board in _BOARDS if board.qemu_machine)


def get_board(name) -> Board:
    """The board called `name` (or a Board); a clear error listing the valid names otherwise."""
    if isinstance(name, Board):
        return name
    key = str(name).strip().lower().replace("-", "_")
    if key in BOARDS:
        return BOARDS[key]
    for board in BOARDS.values():  # an emulated board also answers to its QEMU machine name
        if board.qemu_machine and board.qemu_machine.replace("-", "_") == key:
            return board
    raise RNNPoolError(f"unknown board {name!r}; valid boards: {', '.join(BOARDS)}")


def _kib(n: int) -> str:
    return f"{n:,} B ({n / KIB:.1f} KiB)"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether a model fits a board. margins > 0: bytes to spare; < 0: bytes missing."""

    board: str
    ram_needed: int
    ram_available: int
    flash_needed: int
    flash_available: int

    @property
    def ram_margin(self) -> int:
        return self.ram_available - self.ram_needed

    @property
    def flash_margin(self) -> int:
        return self.flash_available - self.flash_needed

    @property
    def ram_fits(self) -> bool:
        return self.ram_margin >= 0

    @property
    def flash_fits(self) -> bool:
        return self.flash_margin >= 0

    @property
    def fits(self) -> bool:
        return self.ram_fits and self.flash_fits

    def message(self) -> str:
        parts = []
        for what, fits, margin, need, have in (
            ("RAM", self.ram_fits, self.ram_margin, self.ram_needed, self.ram_available),
            ("flash", self.flash_fits, self.flash_margin, self.flash_needed, self.flash_available),
        ):
            if fits:
                parts.append(f"{what} fits: {_kib(need)} of {_kib(have)}, {_kib(margin)} free")
            else:
                parts.append(f"{what} does not fit: needs {_kib(need)}, has {_kib(have)}, misses {_kib(-margin)}")
        return f"{self.board}: " + "; ".join(parts)

    def as_dict(self) -> dict:
        return {
            "board": self.board,
            "fits": self.fits,
            "ram_fits": self.ram_fits,
            "flash_fits": self.flash_fits,
            "ram_needed": self.ram_needed,
            "ram_available": self.ram_available,
            "ram_margin": self.ram_margin,
            "flash_needed": self.flash_needed,
            "flash_available": self.flash_available,
            "flash_margin": self.flash_margin,
        }


def verdict(board, arena_bytes: int, model_bytes: int, other_ram: int = 0, other_flash: int = 0) -> Verdict:
    """The arithmetic of a fit on `board` (a Board or a board name).

    RAM: the arena plus `other_ram` (what shares its block: .data/.bss, the stack on
    boards without CCM) against the arena's block (`Board.arena_block`). Flash: the model
    plus `other_flash` (code, constants) against the flash size. What the firmware adds
    is deploy/fit.py's business; this is the sum and the comparison.
    """
    board = get_board(board)
    values = {}
    for label, value in (
        ("arena_bytes", arena_bytes),
        ("model_bytes", model_bytes),
        ("other_ram", other_ram),
        ("other_flash", other_flash),
    ):
        try:
            values[label] = operator.index(value)
        except TypeError:
            values[label] = -1
        if isinstance(value, bool) or values[label] < 0:
            raise RNNPoolError(f"{label} must be a non-negative integer, got {value!r}")
    return Verdict(
        board.name,
        values["arena_bytes"] + values["other_ram"],
        board.arena_block.size,
        values["model_bytes"] + values["other_flash"],
        board.flash_bytes,
    )
