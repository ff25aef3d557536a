"""Board table and fit verdicts (rnnpool_tflm.core.boards)."""

import numpy as np
import pytest

from rnnpool_tflm.core.boards import BOARDS, HARDWARE_BOARDS, get_board, verdict
from rnnpool_tflm.core.errors import RNNPoolError

KIB = 1024


@pytest.mark.parametrize("name, flash_kib, block_kib, ccm_kib, mhz", [
    ("nucleo_f446re", 512, 128, 0, 180),
    ("disco_f407vg", 1024, 128, 64, 168),
    ("nucleo_f429zi", 2048, 192, 64, 180),
    ("nucleo_f439zi", 2048, 192, 64, 180),
    ("qemu_netduinoplus2", 1024, 128, 64, 168),
])
def test_board_memory_matches_the_datasheets(name, flash_kib, block_kib, ccm_kib, mhz):
    board = get_board(name)
    assert board.flash_bytes == flash_kib * KIB
    assert board.largest_contiguous_ram == block_kib * KIB
    assert board.ccm_bytes == ccm_kib * KIB
    assert board.ram_bytes == (block_kib + ccm_kib) * KIB
    assert board.clock_hz == mhz * 1_000_000


def test_the_four_hardware_boards_and_the_emulated_ones():
    assert set(HARDWARE_BOARDS) == {"nucleo_f446re", "disco_f407vg", "nucleo_f429zi", "nucleo_f439zi"}
    assert get_board("netduinoplus2") is get_board("qemu_netduinoplus2")
    mps2 = get_board("mps2-an386")
    assert mps2.emulated and mps2.arena_block.size == 4 * 1024 * KIB  # where its linker script puts .arena
    assert verdict(mps2, 3 * 1024 * KIB, 2 * 1024 * KIB).fits
    for name in HARDWARE_BOARDS:  # on the STM32s the arena's block is the largest one
        assert get_board(name).arena_block.size == get_board(name).largest_contiguous_ram
    assert get_board(" NUCLEO-F446RE ").name == "nucleo_f446re"


def test_unknown_board_error_lists_the_valid_names():
    with pytest.raises(RNNPoolError) as info:
        get_board("arduino_uno")
    message = str(info.value)
    assert "arduino_uno" in message
    for name in BOARDS:
        assert name in message


def test_a_model_that_fits():
    v = verdict("nucleo_f446re", arena_bytes=100 * KIB, model_bytes=200 * KIB, other_ram=8 * KIB,
                other_flash=100 * KIB)
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
