"""`check --board` and `export` give one verdict (deploy/fit.py): for every board, a model
just inside its limit passes both and the next size up is refused by both.

The models (firmware_models.wide_model) grow the arena by 128 B per input column and keep
their test data small. Without TFLM_DIR the verdict uses the arena estimate and the
estimated firmware; with TFLM_DIR (and the Arm toolchain and QEMU) the arena measured on
the emulated Cortex-M4 and the firmware built for the board, where the linker's own
overflow check must agree too. The pair is found from the margin rule, the stack rule and
two probe arenas worked out here, so a verdict that left out the margin (>= 1 KiB), the
firmware's data (~1 KiB) or the F446's shared stack (16 KiB) would split check and
export or miss the boundary. About 30 s without TFLM_DIR, 2 min with it (library cached).
"""

from __future__ import annotations

import json

import firmware_models
import pytest

from rnnpool_tflm.cli import main as cli
from rnnpool_tflm.core.boards import BOARDS, get_board
from rnnpool_tflm.deploy.fit import can_build_firmware

STEP = 2 * 8 * 8  # wide_model(rows=8, channels=8): two 8-channel maps of 8 rows alive at the peak
MEASURED = can_build_firmware()


def _with_margin(figure: int) -> int:
    """export's arena: the figure + 5 % (at least 1 KiB), rounded up to 16 bytes."""
    return -(-(figure + max(1024, -(-figure * 5 // 100))) // 16) * 16


def _model(tmp_path, width: int):
    path = tmp_path / f"wide{width}.tflite"
    path.write_bytes(firmware_models.wide_model(width))
    return path


def _check(capsys, path, *board) -> dict:
    code = cli.main(["check", str(path), "--samples", "1", "--json", *(("--board", board[0]) if board else ())])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert code == (0 if report["fits"] in (True, None) else 1), err
    return report


def _export(capsys, path, firmware_dir, board):
    code = cli.main(["export", str(path), "--firmware", str(firmware_dir), "--board", board, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in err
    return code, json.loads(out) if code == 0 else err


@pytest.fixture(scope="module")
def arena_line(tmp_path_factory):
    """(slope, intercept) of the arena figure over the width, from two probes (check's figure:
    measured or estimated); the slope must be the model's 128 B per column."""
    from rnnpool_tflm.check.checker import check_model

    tmp = tmp_path_factory.mktemp("probes")
    widths = (600, 700)
    figures = [check_model(_model(tmp, w), samples=1).arena_bytes for w in widths]
    slope = (figures[1] - figures[0]) // (widths[1] - widths[0])
    assert slope == STEP and (figures[1] - figures[0]) % (widths[1] - widths[0]) == 0
    return slope, figures[0] - slope * widths[0]


@pytest.mark.parametrize("board", list(BOARDS))
def test_check_and_export_agree_at_the_board_limit(board, arena_line, tmp_path, capsys):
    b = get_board(board)
    slope, intercept = arena_line
    # What the firmware adds: check's verdict on a small probe of the same operators says
    # (from the ELF built for the board, or the estimate). The stack counts where it shares
    # the arena's block: the F446 only, among the boards (no CCM).
    probe = _check(capsys, _model(tmp_path, 600), board)["fit"]
    assert probe["stack_in_arena_block"] == (16 * 1024 if board == "nucleo_f446re" else 0)
    assert 0 < probe["firmware_static_ram"] <= 7 * 1024
    budget = b.arena_block.size - probe["firmware_static_ram"] - probe["stack_in_arena_block"]
    figure_max = budget
    while _with_margin(figure_max) > budget:
        figure_max -= 1
    below = (figure_max - intercept) // slope
    assert slope * below + intercept <= figure_max < slope * (below + 1) + intercept

    for width, fits in ((below, True), (below + 1, False)):
        path = _model(tmp_path, width)
        report = _check(capsys, path, board)
        code, exported = _export(capsys, path, tmp_path / f"fw{width}", board)
        assert report["fits"] is fits, report["verdict"]
        assert (code == 0) is fits, exported  # export refuses exactly what check rejects
        verdict = report["fit"]
        assert verdict["arena_bytes"] == _with_margin(report["arena_bytes"])
        assert verdict["firmware_built"] is MEASURED and report["arena_exact"] is MEASURED
        if fits:
            assert exported["verdict_ram_needed"] == verdict["ram_needed"]
            assert 0 <= b.arena_block.size - verdict["ram_needed"] < 2 * slope  # near the limit
        else:
            assert f"does not fit {board}: RAM does not fit" in exported
            assert f"does not fit {board}" in " ".join(report["failures"])
            assert 0 < verdict["ram_needed"] - b.arena_block.size < 2 * slope
        if MEASURED:  # the linker, checking the same layout, says the same
            assert (verdict["linker_overflows"] == []) is fits, verdict["linker_overflows"]


def test_a_detectors_post_processing_counts_in_the_firmwares_ram():
    """export builds a detector's firmware with the post-processing's scratch and boxes in .bss;
    the verdict (check, export, profile) counts them. The tiny detector of
    test_firmware_detection: 128 B of scratch (worked out there) and top_k 4 boxes of 28 B
    (detection_box: five floats, two int32)."""
    from test_firmware_detection import _tiny_detector

    from rnnpool_tflm.deploy import fit as fitting

    setup = _tiny_detector()[0]
    model = firmware_models.wide_model(600)
    plain = fitting.assess(model, "nucleo_f446re", measure=False)
    detector = fitting.assess(model, "nucleo_f446re", measure=False, detector=setup)
    assert detector.firmware.static_ram - plain.firmware.static_ram == 128 + 4 * 28
    assert detector.verdict.ram_needed - plain.verdict.ram_needed == 128 + 4 * 28


def test_a_model_that_fits_only_with_rnn1_recomputed_is_told_the_command(tmp_path):
    """The RNNPool op's trade (docs/kernel.md): caching RNN1 across overlapping patches takes tens
    of KB of scratch, recomputing it a few hundred bytes. On a board whose SRAM holds the
    recompute variant but not the cached one, the verdict says so and gives the command; on a
    board too small for both, and for a model already recomputing, it says nothing more."""
    import dataclasses

    import arena_models

    from rnnpool_tflm.convert.memory_plan import apply_memory_plan
    from rnnpool_tflm.core.boards import MemoryBlock
    from rnnpool_tflm.deploy import fit as fitting
    from rnnpool_tflm.tflite import model as tfm

    cached = arena_models.rnnpool_model(size=64, channels=8, patch=8, stride=4, hidden1=16, hidden2=16)
    recompute, _ = apply_memory_plan(tfm.set_rnn1_mode(cached, "recompute"))
    small, large = fitting.estimated_arena(recompute).bytes, fitting.estimated_arena(cached).bytes
    assert small + 4096 < large  # the cached ring and column states
    base = get_board("disco_f407vg")  # stack in CCM: the SRAM block holds data and arena only
    static = fitting.assess(cached, base, measure=False).firmware.static_ram

    def board(sram: int):
        return dataclasses.replace(base, ram_blocks=(MemoryBlock("SRAM", 0x2000_0000, sram), base.block("CCM")))

    between = board(static + fitting.with_margin(small))
    path = tmp_path / "pool.tflite"
    path.write_bytes(cached)
    fit = fitting.assess(path, between, measure=False)
    assert not fit.fits
    assert f"arena {small:,} B by the estimate" in fit.hint
    assert "rnnpool-tflm convert pool.tflite --rnn1-mode recompute -o pool_recompute.tflite" in fit.message()
    assert fit.as_dict()["hint"] == fit.hint
    assert fitting.assess(recompute, between, measure=False).fits
    assert fitting.assess(cached, board(static + fitting.with_margin(small) - 16), measure=False).hint is None
    assert fitting.assess(recompute, board(static + 1024), measure=False).hint is None
