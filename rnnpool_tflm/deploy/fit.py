"""The one fit verdict: does a model, inside the firmware, fit a board?

`check --board`, `export` and `profile --board` all ask `assess`, so they cannot disagree.
The verdict counts what the firmware really places in the board's memory:

* the tensor arena: `arena_used_bytes()` of the firmware on the emulated Cortex-M4
  (deploy/emulate.py) when TFLM sources, the Arm toolchain and QEMU are available
  (`can_build_firmware`), else the toolkit's estimate of TFLM's planning
  (rnnpool_tflm.arena); plus the margin export gives it (`with_margin`): the arena the
  firmware is built with;
* the firmware around the model: .data/.bss (and alignment; a detector's post-processing
  scratch and boxes too) in the arena's SRAM block,
  the stack where it shares that block (boards without CCM, core/boards.py's record) and
  the code, constants and test data in flash -- from the ELF built for the board
  (deploy/build.py, linked even when it overflows so the sizes are known) when the
  firmware can be built, else an estimate (FIRMWARE_* below).

RAM: arena + firmware statics + shared stack against the arena's block; flash: model +
the rest of the image against the board's flash (core/boards.py `verdict`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import pathlib
import shutil
import tempfile
from typing import Callable, Optional, Tuple, Union

import numpy as np

from ..core import boards
from ..core.errors import RNNPoolError
from ..tflite.model_info import ModelInfo, read_model_info

ARENA_MARGIN_FRACTION = 0.05
ARENA_MARGIN_MIN = 1024

# The firmware around the model when it cannot be built here (no TFLM_DIR). Measured with
# arm-none-eabi-gcc 12, TFLM's flags and CMSIS-NN: code CONV_2D alone 60.5 KB, RNNPool
# alone 66.6 KB, the 6-operator acceptance model 144 KB; .data + .bss: the interpreter and
# the op resolver (884 B with one CONV_2D) and one 20-byte profile record per operator
# (Face-M4's 14: 1,228 B, plus its detector's 6,400 B). Rounded up.
FIRMWARE_FLASH_BASE = 52 * 1024
FIRMWARE_FLASH_PER_OP = 16 * 1024
FIRMWARE_STATIC_RAM = 1280
FIRMWARE_STATIC_RAM_PER_OPERATOR = 24

MEASURED_LABEL = "measured on the emulated Cortex-M4"
ESTIMATE_LABEL = "estimate"


@dataclasses.dataclass(frozen=True)
class ArenaFigure:
    """The arena a model needs on the Cortex-M4 (no margin)."""

    bytes: int
    exact: bool  # measured on the emulated M4
    label: str
    machine: Optional[str] = None  # the QEMU machine it was measured on
    output_matches_host: Optional[bool] = None  # the emulated run's output equalled the host's


@dataclasses.dataclass(frozen=True)
class Firmware:
    """What the firmware around the model takes besides the arena and the model."""

    static_ram: int  # in the arena's block: .data, .bss, alignment
    stack: int  # the stack where it shares the arena's block (0 where it has its own)
    flash: int  # code, constants, test data, .data's initial values
    built: bool  # from the ELF built for the board (else estimated)
    linker_overflows: Tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "firmware built for the board" if self.built else "firmware estimated"


@dataclasses.dataclass(frozen=True)
class Fit:
    board: str
    model_bytes: int
    arena: ArenaFigure
    arena_bytes: int  # with the margin: the arena export writes into model_config.h
    firmware: Firmware
    verdict: boards.Verdict
    hint: Optional[str] = None  # for a model that does not fit: a variant that would (recompute_hint)

    @property
    def fits(self) -> bool:
        return self.verdict.fits and not self.firmware.linker_overflows

    def message(self) -> str:
        linker = (
            f"; the linker says: {' | '.join(self.firmware.linker_overflows)}" if self.firmware.linker_overflows else ""
        )
        stack = f" + stack {self.firmware.stack:,} B" if self.firmware.stack else ""
        return (
            f"{self.verdict.message()} (RAM: arena {self.arena_bytes:,} B = {self.arena.label} "
            f"{self.arena.bytes:,} B + margin, + firmware data {self.firmware.static_ram:,} B{stack}; "
            f"{self.firmware.label}){linker}" + (f"; {self.hint}" if self.hint and not self.fits else "")
        )

    def as_dict(self) -> dict:
        return {
            **self.verdict.as_dict(),
            "fits": self.fits,
            "arena_figure_bytes": self.arena.bytes,
            "arena_exact": self.arena.exact,
            "arena_label": self.arena.label,
            "arena_bytes": self.arena_bytes,
            "firmware_static_ram": self.firmware.static_ram,
            "stack_in_arena_block": self.firmware.stack,
            "firmware_flash": self.firmware.flash,
            "firmware_built": self.firmware.built,
            "linker_overflows": list(self.firmware.linker_overflows),
            "hint": self.hint if not self.fits else None,
        }


def with_margin(arena_bytes: int) -> int:
    """The arena the firmware gets: the figure + 5 % (at least 1 KiB), rounded up to 16 B."""
    margin = max(ARENA_MARGIN_MIN, math.ceil(arena_bytes * ARENA_MARGIN_FRACTION))
    return (arena_bytes + margin + 15) // 16 * 16


def can_build_firmware() -> bool:
    """TFLM sources, the Arm toolchain and QEMU: the firmware can be built and measured."""
    from ..toolchain import tflm_tree
    from . import build as firmware_build
    from . import emulate as firmware_run

    return (
        tflm_tree.tflm_dir(required=False) is not None
        and not firmware_build.missing_tools()
        and shutil.which(firmware_run.QEMU) is not None
    )


# ---- the arena -----------------------------------------------------------------------------------


def estimated_arena(model: bytes) -> ArenaFigure:
    """The toolkit's estimate of TFLM's planning for the Cortex-M4 build."""
    from ..arena import estimate_arena

    estimate = estimate_arena(model, "cortex-m4")
    return ArenaFigure(int(max(estimate.total_bytes, estimate.min_arena_bytes)), False, estimate.label)


def measured_arena(
    model_path: pathlib.Path, input_path: Optional[pathlib.Path] = None, host_run: Optional[Callable] = None
) -> Optional[ArenaFigure]:
    """arena_used_bytes() of the firmware on the emulated Cortex-M4 (mps2-an386 when the
    model exceeds the F405); None when no emulated machine holds the model."""
    from . import emulate as firmware_run

    kwargs = {"host_run": host_run} if host_run is not None else {}
    try:
        emulation = firmware_run.measure_arena(pathlib.Path(model_path), input_path, **kwargs)
    except firmware_run.DoesNotFit:
        return None
    return ArenaFigure(
        int(emulation.arena_used_bytes),
        True,
        f"{MEASURED_LABEL} ({emulation.machine})",
        emulation.machine,
        emulation.output_matches_host,
    )


def arena_figure(
    model: bytes,
    model_path: Optional[pathlib.Path] = None,
    input_path: Optional[pathlib.Path] = None,
    host_run: Optional[Callable] = None,
    measure: Optional[bool] = None,
) -> ArenaFigure:
    """The arena: measured when `measure` (default: when the firmware can be built), else
    estimated; the estimate also when no emulated machine holds the model."""
    if measure is None:
        measure = can_build_firmware()
    if measure:
        with tempfile.TemporaryDirectory(prefix="rnnpool-fit-") as tmp:
            if model_path is None:
                model_path = pathlib.Path(tmp) / "model.tflite"
                model_path.write_bytes(model)
            figure = measured_arena(model_path, input_path, host_run)
        if figure is not None:
            return figure
    return estimated_arena(model)


# ---- the firmware around the model ---------------------------------------------------------------


def _test_data_bytes(info: ModelInfo) -> int:
    """The test input and expected output the firmware embeds (deploy/sources.py)."""
    return sum(
        int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize for t in (*info.inputs, *info.outputs)
    )


def detector_ram(detector) -> int:
    """Static RAM of a detector's post-processing in the firmware (firmware/src/detection_report.cc):
    its scratch and top_k boxes; 0 without one."""
    if detector is None:
        return 0
    from ..runtime import detection_native

    return detection_native.scratch_bytes(detector) + ctypes.sizeof(detection_native.CBox) * detector.top_k


def estimated_firmware(board: boards.Board, info: ModelInfo, detector=None) -> Firmware:
    return Firmware(
        FIRMWARE_STATIC_RAM + FIRMWARE_STATIC_RAM_PER_OPERATOR * info.operator_count + detector_ram(detector),
        board.stack_bytes if board.stack_shares_arena_block else 0,
        FIRMWARE_FLASH_BASE + FIRMWARE_FLASH_PER_OP * len(info.ops) + _test_data_bytes(info),
        False,
    )


def _sizing_data(info: ModelInfo) -> Tuple[list, list]:
    """Test data of the model's shapes: the firmware's sizes do not depend on the values
    (const arrays are stored whole in flash)."""
    from .host_run import load_inputs

    inputs = load_inputs(None, info)
    outputs = [np.zeros(t.shape, np.dtype(t.dtype)) for t in info.outputs]
    return inputs, outputs


def built_firmware(
    board: boards.Board,
    model: bytes,
    info: ModelInfo,
    arena_bytes: int,
    name: str = "model",
    log: Optional[Callable[[str], None]] = None,
    detector=None,
) -> Firmware:
    """The firmware built for `board` with this model and arena (and the detector's
    post-processing, if any); its ELF's sizes."""
    from . import build as firmware_build
    from .sources import write_sources

    inputs, outputs = _sizing_data(info)
    with tempfile.TemporaryDirectory(prefix="rnnpool-fit-") as tmp:
        generated = write_sources(
            pathlib.Path(tmp) / "generated",
            model,
            info,
            inputs,
            outputs,
            arena_bytes,
            name,
            board.name,
            detector=detector,
        )
        build = firmware_build.build_firmware(
            generated.directory, board, pathlib.Path(tmp) / "build", log=log, allow_overflow=True
        )
    stack = build.stack_bytes if board.stack_shares_arena_block else 0
    # .data and .bss up to the (16-byte aligned) arena: what precedes the arena in its block,
    # not end-of-block arithmetic (an overflowing image may place .stack outside the block).
    arena = next((s for s in build.sections if s.name == ".arena" and s.size), None)
    block = board.arena_block
    if arena is not None and block.base <= arena.vma < block.end:
        static_ram = arena.vma - block.base
    else:
        static_ram = build.ram_used(block, exclude=(".arena", ".stack"))
    return Firmware(static_ram, stack, build.flash_bytes - len(model), True, build.overflows)


# ---- the verdict -------------------------------------------------------------------------------------


def assess(
    model: Union[bytes, pathlib.Path],
    board,
    *,
    model_path: Optional[pathlib.Path] = None,
    input_path: Optional[pathlib.Path] = None,
    host_run: Optional[Callable] = None,
    measure: Optional[bool] = None,
    arena: Optional[ArenaFigure] = None,
    log: Optional[Callable[[str], None]] = None,
    detector=None,
) -> Fit:
    """Does `model` (bytes or a path) fit `board` in the firmware? `measure`: measure the
    arena and build the firmware (default: when possible); `arena`: a figure already
    measured or estimated (e.g. by check). `input_path`/`host_run` feed the emulated run's
    comparison with the host (export passes the user's input and its host output).
    `detector` (a runtime.detection_native.DetectorSetup): the firmware also holds the
    detector's post-processing (its scratch and boxes are static RAM)."""
    board = boards.get_board(board)
    if not isinstance(model, (bytes, bytearray)):
        model_path = pathlib.Path(model)
        model = model_path.read_bytes()
    model = bytes(model)
    info = read_model_info(model)
    if measure is None:
        measure = can_build_firmware()
    if arena is None:
        arena = arena_figure(model, model_path, input_path, host_run, measure)
    arena_bytes = with_margin(arena.bytes)
    name = model_path.stem if model_path is not None else "model"
    firmware = (
        built_firmware(board, model, info, arena_bytes, name, log, detector)
        if measure
        else estimated_firmware(board, info, detector)
    )
    verdict = boards.verdict(
        board, arena_bytes, len(model), other_ram=firmware.static_ram + firmware.stack, other_flash=firmware.flash
    )
    fit = Fit(board.name, len(model), arena, arena_bytes, firmware, verdict)
    if not fit.fits and info.has_rnnpool:
        fit = dataclasses.replace(fit, hint=recompute_hint(model, model_path, board, arena, firmware))
    return fit


def recompute_hint(
    model: bytes, model_path: Optional[pathlib.Path], board: boards.Board, arena: ArenaFigure, firmware: Firmware
) -> Optional[str]:
    """For a model that does not fit: whether it would with its RNNPool ops recomputing RNN1
    instead of caching it (the op's trade: a few hundred bytes of scratch instead of tens of KB,
    for about twice its instructions), replanned and estimated; the command that makes it, or
    None (no smaller variant, or it would not fit either)."""
    from ..convert.memory_plan import apply_memory_plan
    from ..tflite import model as tfm

    try:
        variant, _ = apply_memory_plan(tfm.set_rnn1_mode(model, "recompute"))
    except RNNPoolError:
        return None
    figure = estimated_arena(variant)
    if figure.bytes >= arena.bytes:
        return None  # already recomputing (or nothing to gain)
    verdict = boards.verdict(
        board,
        with_margin(figure.bytes),
        len(variant),
        other_ram=firmware.static_ram + firmware.stack,
        other_flash=firmware.flash,
    )
    if not verdict.fits:
        return None
    source = model_path.name if model_path is not None else "MODEL.tflite"
    target = (model_path.stem if model_path is not None else "model") + "_recompute.tflite"
    return (
        f"it would fit with RNNPool recomputing RNN1 instead of caching it (arena {figure.bytes:,} B by the "
        f"estimate, about twice the RNNPool op's instructions): "
        f"rnnpool-tflm convert {source} --rnn1-mode recompute -o {target}"
    )


def refuse_unless_fits(fit: Fit) -> None:
    """The error export raises for a model that does not fit."""
    if not fit.fits:
        raise RNNPoolError(f"the model does not fit {fit.board}: {fit.message().split(': ', 1)[1]}")
