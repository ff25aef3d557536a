"""The boards the toolkit targets: their memory, core clock, and whether a model fits.

The tensor arena is one array, so it must fit ONE contiguous SRAM block, not the sum
of all RAM. CCM (core-coupled memory, CPU-only, not reachable by DMA) is a separate
block at 0x10000000 on the F405/F407/F429/F439; the firmware can use it for the stack
and small globals, and an arena small enough may live there, but it never joins the
main SRAM.

Sources (ST documents; section/table numbers of the revisions current in 2024):
- STM32F446xC/E datasheet DS10693, section 3.4/3.5 and Table 2 "features and
  peripheral counts": 512 KB flash, 128 KB SRAM (SRAM1 112 KB + SRAM2 16 KB), 4 KB
  backup SRAM, no CCM, 180 MHz. Reference manual RM0390, 2.3 "Embedded SRAM": SRAM1 at
  0x2000_0000, SRAM2 at 0x2001_C000 (contiguous).
- STM32F405xx/07xx datasheet DS8626, 3.4/3.5 and Table 2: 1 MB flash, 192 KB SRAM
  = 112 KB + 16 KB + 64 KB CCM data RAM, 168 MHz. RM0090, 2.3.1 "Embedded SRAM":
  SRAM1 0x2000_0000, SRAM2 0x2001_C000 (contiguous 128 KB), CCM 0x1000_0000.
- STM32F427xx/29xx datasheet DS9405 and STM32F437xx/39xx datasheet DS9484, 3.5 and
  Table 2: 2 MB flash (ZI = 2048 KB), 256 KB SRAM = 112 + 16 + 64 KB + 64 KB CCM,
  180 MHz. RM0090, 2.3.1: on STM32F42xxx/43xxx SRAM3 follows SRAM2 at 0x2002_0000,
  so SRAM1+2+3 are one contiguous 192 KB block.
- Boards: NUCLEO-F446RE / NUCLEO-F429ZI / NUCLEO-F439ZI (UM1724, UM1974) and
  STM32F4DISCOVERY (UM1472) carry exactly those MCUs (F407VGT6 on the Discovery).
- Emulated: QEMU 7.2 `netduinoplus2` is an STM32F405RG (1 MB flash at 0x0800_0000);
  QEMU maps one 192 KB RAM at 0x2000_0000 and no CCM, and the project's linker script
  (firmware/platform/stm32f405_qemu.ld) splits it into the real chip's 128 KB SRAM
  block plus a 64 KB "CCM" region, so the verdict uses the real chip's layout. QEMU
  `mps2-an386` (`info mtree`): 4 MB SSRAM1 at 0x0 (code), 4 MB SSRAM2/3 at 0x2000_0000,
  16 MB RAM at 0x2100_0000 (not adjacent); the FPGA image clocks the M4 at 25 MHz. Its
  linker script (firmware/platform/mps2_an386_qemu.ld) puts data and the arena in
  SSRAM2/3 and the stack in the 16 MB RAM, so the arena's limit there is 4 MB.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Dict, Optional, Tuple

from .errors import RNNPoolError

KIB = 1024
MIB = 1024 * KIB


@dataclasses.dataclass(frozen=True)
class MemoryBlock:
    """One contiguous RAM region the linker can place data in."""

    name: str
    base: int
    size: int
    dma: bool = True  # CCM is CPU-only


@dataclasses.dataclass(frozen=True)
class Board:
    name: str
    mcu: str
    description: str
    clock_hz: int
    flash_bytes: int
    ram_blocks: Tuple[MemoryBlock, ...]
    emulated: bool = False
    qemu_machine: Optional[str] = None
    arena_region: Optional[str] = None  # the block the firmware's linker script puts .arena in


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

    @property
    def arena_block(self) -> MemoryBlock:
        """The block the arena must fit: the largest contiguous one, unless the firmware's
        linker script places .arena elsewhere (mps2-an386: SSRAM2/3, the stack in RAM)."""
        if self.arena_region:
            return next(block for block in self.ram_blocks if block.name == self.arena_region)
        return max(self.ram_blocks, key=lambda block: block.size)


def _stm32(name, mcu, description, clock_mhz, flash_kib, sram_kib, ccm_kib, **extra) -> Board:
    blocks = [MemoryBlock("SRAM", 0x2000_0000, sram_kib * KIB)]
    if ccm_kib:
        blocks.append(MemoryBlock("CCM", 0x1000_0000, ccm_kib * KIB, dma=False))
    return Board(name, mcu, description, clock_mhz * 1_000_000, flash_kib * KIB, tuple(blocks), **extra)


_BOARDS = (
    # SRAM1 112 KB + SRAM2 16 KB contiguous; no CCM.
    _stm32("nucleo_f446re", "STM32F446RE", "ST NUCLEO-F446RE", 180, 512, 112 + 16, 0),
    # SRAM1 112 KB + SRAM2 16 KB contiguous; 64 KB CCM apart.
    _stm32("disco_f407vg", "STM32F407VG", "ST STM32F4DISCOVERY", 168, 1024, 112 + 16, 64),
    # SRAM1 112 + SRAM2 16 + SRAM3 64 KB contiguous; 64 KB CCM apart.
    _stm32("nucleo_f429zi", "STM32F429ZI", "ST NUCLEO-F429ZI", 180, 2048, 112 + 16 + 64, 64),
    _stm32("nucleo_f439zi", "STM32F439ZI", "ST NUCLEO-F439ZI", 180, 2048, 112 + 16 + 64, 64),
    # The emulated STM32F405 (real chip's layout, see the module docstring).
    _stm32("qemu_netduinoplus2", "STM32F405RG", "QEMU netduinoplus2 (emulated STM32F405)", 168, 1024,
           112 + 16, 64, emulated=True, qemu_machine="netduinoplus2"),
    Board("qemu_mps2_an386", "CMSDK Cortex-M4 (AN386)", "QEMU mps2-an386 (emulated Cortex-M4 FPGA image)",
          25_000_000, 4 * MIB,
          (MemoryBlock("SSRAM2/3", 0x2000_0000, 4 * MIB), MemoryBlock("RAM", 0x2100_0000, 16 * MIB)),
          emulated=True, qemu_machine="mps2-an386", arena_region="SSRAM2/3"),  # firmware/platform/mps2_an386_qemu.ld
)

BOARDS: Dict[str, Board] = {board.name: board for board in _BOARDS}
# The real boards the firmware has PlatformIO environments for.
HARDWARE_BOARDS = tuple(board.name for board in _BOARDS if not board.emulated)


def get_board(name: str) -> Board:
    """The board called `name`; a clear error listing the valid names otherwise."""
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
                ("flash", self.flash_fits, self.flash_margin, self.flash_needed, self.flash_available)):
            if fits:
                parts.append(f"{what} fits: {_kib(need)} of {_kib(have)}, {_kib(margin)} free")
            else:
                parts.append(f"{what} does not fit: needs {_kib(need)}, has {_kib(have)}, "
                             f"misses {_kib(-margin)}")
        return f"{self.board}: " + "; ".join(parts)

    def as_dict(self) -> dict:
        return {"board": self.board, "fits": self.fits, "ram_fits": self.ram_fits, "flash_fits": self.flash_fits,
                "ram_needed": self.ram_needed, "ram_available": self.ram_available, "ram_margin": self.ram_margin,
                "flash_needed": self.flash_needed, "flash_available": self.flash_available,
                "flash_margin": self.flash_margin}


def verdict(board, arena_bytes: int, model_bytes: int, other_ram: int = 0, other_flash: int = 0) -> Verdict:
    """Does a model fit `board` (a Board or a board name)?

    RAM: the arena plus `other_ram` (statics placed next to it: buffers, .data/.bss)
    against the block the arena lives in (`Board.arena_block`: the largest contiguous
    RAM block on the STM32s). Flash: the model plus `other_flash` (code, constants)
    against the flash size.
    """
    board = board if isinstance(board, Board) else get_board(board)
    values = {}
    for label, value in (("arena_bytes", arena_bytes), ("model_bytes", model_bytes),
                         ("other_ram", other_ram), ("other_flash", other_flash)):
        try:
            values[label] = operator.index(value)
        except TypeError:
            values[label] = -1
        if isinstance(value, bool) or values[label] < 0:
            raise RNNPoolError(f"{label} must be a non-negative integer, got {value!r}")
    return Verdict(board.name, values["arena_bytes"] + values["other_ram"], board.arena_block.size,
                   values["model_bytes"] + values["other_flash"], board.flash_bytes)
