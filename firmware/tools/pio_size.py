"""PlatformIO extra script (post:): the RAM and Flash lines count what the firmware really
puts in RAM and flash.

ststm32's size check counts .data, .bss and .noinit only; the tensor arena is its own
section (.arena, firmware/platform/sections.ld) and, on boards without CCM, the stack
shares the same SRAM block. Both are added here, against the arena's block (the maximum
RAM tools/pio_tflm.py takes from the board record). Its flash count leaves out the vector
table, which our linker script puts in its own section (.isr_vector): added too. So
`pio run` reports the RAM and flash that `rnnpool-tflm check --board` / `export` judge
(up to the few bytes of alignment padding between sections, which they count and this sum
does not).
"""

import pathlib
import sys

Import("env")  # noqa: F821  (provided by PlatformIO/SCons)

REPO = pathlib.Path(env.subst("$PROJECT_DIR")).resolve().parent  # noqa: F821
sys.path.insert(0, str(REPO))
from rnnpool_tflm.core import boards  # noqa: E402

board = boards.get_board(env["PIOENV"])  # noqa: F821
ram_sections = [r"\.data", r"\.bss", r"\.noinit", r"\.arena"] + ([r"\.stack"] if board.stack_shares_arena_block else [])
flash_sections = [r"\.isr_vector", r"\.text", r"\.rodata", r"\.ARM\.exidx", r"\.data"]
env.Replace(  # noqa: F821
    SIZEDATAREGEXP=rf"^(?:{'|'.join(ram_sections)})\s+(\d+).*",
    SIZEPROGREGEXP=rf"^(?:{'|'.join(flash_sections)})\s+(\d+).*",
)
