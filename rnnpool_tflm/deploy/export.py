"""`rnnpool-tflm export`: a model's firmware sources, if the model fits the board.

Picks the test input, runs the model on the host for the expected output, sizes the
arena (the check's figure plus a margin: measured on the emulated Cortex-M4 when
TFLM_DIR is set, else the toolkit's estimate), judges the fit (on the firmware built
for the board when TFLM_DIR is set, else on an estimate of the code around the model)
and writes the generated sources (firmware_sources) into DIR/generated/.
"""

from __future__ import annotations

import math
import pathlib
import tempfile
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..core import boards
from ..core.errors import RNNPoolError
from ..tflite.model_info import ModelInfo, TensorInfo, check_ops_supported, read_model_info
from .sources import Generated, write_sources
from ..runtime.native_output import captured_stderr_fd
from ..runtime.interpreter import default_arena_size, open_interpreter

GENERATED = "generated"

# The firmware around the model when it cannot be built here (no TFLM_DIR): code =
# base + per distinct operator. Measured (arm-none-eabi-gcc 12, TFLM flags, CMSIS-NN):
# CONV_2D alone 60.5 KB, RNNPool alone 66.6 KB, the 6-operator acceptance model 144 KB;
# rounded up. With TFLM_DIR, export builds the firmware for the board and uses the ELF.
FIRMWARE_FLASH_BASE = 52 * 1024
FIRMWARE_FLASH_PER_OP = 16 * 1024
FIRMWARE_STATIC_RAM = 2 * 1024          # .data + .bss of the app and TFLM (measured about 1 KB)
FIRMWARE_STACK = 16 * 1024              # the linker scripts' stack (in CCM where the board has it)
ARENA_MARGIN_FRACTION = 0.05
ARENA_MARGIN_MIN = 1024

# ---- inputs ------------------------------------------------------------------------------------

def _round_half_away(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def coerce_input(array: np.ndarray, info: TensorInfo, label: str) -> np.ndarray:
    """`array` as the model input `info` wants it: same element count (leading 1s may
    differ), same dtype, or float data quantized with the input's scale/zero point."""
    array = np.asarray(array)
    if array.size != int(np.prod(info.shape, dtype=np.int64)):
        raise RNNPoolError(f"{label} has shape {tuple(array.shape)}, the model input {info.name!r} "
                           f"needs {tuple(info.shape)}")
    if tuple(s for s in array.shape if s != 1) != tuple(s for s in info.shape if s != 1):
        raise RNNPoolError(f"{label} has shape {tuple(array.shape)}, the model input {info.name!r} "
                           f"needs {tuple(info.shape)}")
    array = array.reshape(info.shape)
    want = np.dtype(info.dtype)
    if array.dtype == want:
        return array
    if array.dtype.kind == "f" and want.kind in "iu":
        if not info.scale > 0:
            raise RNNPoolError(f"{label} is float but the {want} input {info.name!r} has no quantization scale")
        info_range = np.iinfo(want)
        q = _round_half_away(array.astype(np.float64) / info.scale) + info.zero_point
        return np.clip(q, info_range.min, info_range.max).astype(want)
    if want.kind == "f" and array.dtype.kind in "fiu":
        return array.astype(want)
    raise RNNPoolError(f"{label} has dtype {array.dtype}, the model input {info.name!r} needs {want}")


def load_inputs(path: Optional[pathlib.Path], info: ModelInfo, seed: int = 0) -> List[np.ndarray]:
    """The test inputs: from FILE.npy (one input) / FILE.npz (by name or in order), or
    deterministic random data over each input's range."""
    if path is None:
        rng = np.random.default_rng(seed)
        out = []
        for t in info.inputs:
            dt = np.dtype(t.dtype)
            if dt.kind in "iu":
                lim = np.iinfo(dt)
                out.append(rng.integers(lim.min, lim.max, size=t.shape, endpoint=True).astype(dt))
            elif dt.kind == "b":
                out.append(rng.integers(0, 1, size=t.shape, endpoint=True).astype(dt))
            else:
                out.append(rng.standard_normal(t.shape).astype(dt))
        return out
    from ..core.files import load_arrays
    path = pathlib.Path(path)
    loaded = load_arrays(path, "input file")
    if isinstance(loaded, np.ndarray):
        if len(info.inputs) != 1:
            raise RNNPoolError(f"{path} holds one array, the model has {len(info.inputs)} inputs (use .npz)")
        return [coerce_input(loaded, info.inputs[0], str(path))]
    with loaded:
        keys = list(loaded.keys())
        arrays = []
        for i, t in enumerate(info.inputs):
            key = t.name if t.name in keys else (f"arr_{i}" if f"arr_{i}" in keys else None)
            if key is None and len(keys) == len(info.inputs):
                key = keys[i]
            if key is None:
                raise RNNPoolError(f"{path} has no array for input {t.name!r} (keys: {', '.join(keys)})")
            arrays.append(coerce_input(loaded[key], t, f"{path}[{key}]"))
        return arrays


# ---- the host run (switchable: the RNNPool host path comes from check) -------------------------

def host_outputs(model: bytes, inputs: Sequence[np.ndarray], info: ModelInfo) -> List[np.ndarray]:
    """The model's outputs on the host: the tflite-micro Python interpreter; for models with
    custom ops (RNNPool, InvertedResidual), check's host run (rnnpool_tflm.runtime.host: the ops
    registered into the interpreter when TFLM_DIR is set, else the graph partitioned around
    their C kernels)."""
    if info.custom_ops:
        from ..runtime import host as host_runtime
        result = host_runtime.run(bytes(model), [np.asarray(x) for x in inputs])
        return [np.asarray(o).reshape(t.shape) for o, t in zip(result.outputs, info.outputs)]
    return run_interpreter(model, inputs, len(info.outputs))


def run_interpreter(model: bytes, inputs: Sequence[np.ndarray], output_count: int,
                    registerers: Sequence[str] = (), arena_size: Optional[int] = None) -> List[np.ndarray]:
    """Runs the model once in the tflite-micro Python interpreter; a failure's message
    carries what TFLM printed (e.g. the RNNPool op's reason for rejecting the model)."""
    size = arena_size or default_arena_size(model, minimum=4 << 20)
    failure = None
    with captured_stderr_fd() as said:
        try:
            interpreter = open_interpreter(model, size, registerers)
            for i, x in enumerate(inputs):
                interpreter.set_input(x, i)
            interpreter.invoke()
            outputs = [np.array(interpreter.get_output(i)) for i in range(output_count)]
        except Exception as exc:  # the wrapper raises RuntimeError/ValueError with a generic text
            failure = exc
    if failure is not None:
        lines = [line.strip() for line in said[0].splitlines() if line.strip()]
        detail = f"; TFLM said: {' | '.join(lines[-4:])}" if lines else ""
        raise RNNPoolError(f"the tflite-micro interpreter could not run the model: {failure}{detail}") from None
    return outputs


# ---- arena figure and fit ----------------------------------------------------------------------

MEASURED_LABEL = "measured on the emulated Cortex-M4"


def arena_figure(model: bytes) -> Tuple[int, str]:
    """The check's arena for the Cortex-M4 target without TFLM sources: the toolkit's
    estimate of TFLM's planning, and its label."""
    from ..arena import estimate_arena
    estimate = estimate_arena(model, "cortex-m4")
    return max(estimate.total_bytes, estimate.min_arena_bytes), estimate.label


def measured_arena(model_path: pathlib.Path, input_path: Optional[pathlib.Path],
                   expected: Sequence[np.ndarray]) -> Optional[Tuple[int, str, bool]]:
    """The check's arena with TFLM sources: arena_used_bytes() of the firmware on the
    emulated Cortex-M4 (mps2-an386 when the model exceeds the F405), with the label and
    whether the emulated output equalled the host's. None when no emulated machine
    holds the model (the estimate then decides, and the verdict refuses it)."""
    from . import emulate as firmware_run
    try:
        emulation = firmware_run.measure_arena(model_path, input_path, host_run=lambda *_: list(expected))
    except firmware_run.DoesNotFit:
        return None
    return emulation.arena_used_bytes, MEASURED_LABEL, emulation.output_matches_host


def with_margin(arena_bytes: int) -> int:
    margin = max(ARENA_MARGIN_MIN, math.ceil(arena_bytes * ARENA_MARGIN_FRACTION))
    return (arena_bytes + margin + 15) // 16 * 16


def detector_ram(detector) -> int:
    """Static RAM of the firmware's detector post-processing: its scratch and top_k boxes (28 B each)."""
    if detector is None:
        return 0
    from ..runtime import detection_native
    return detection_native.scratch_bytes(detector) + 28 * detector.top_k


def board_verdict(board_name: str, arena_bytes: int, model: bytes, info: ModelInfo, detector=None) -> boards.Verdict:
    """The fit with an estimated firmware around the model (no build)."""
    board = boards.get_board(board_name)
    stack_in_sram = board.ccm_bytes == 0
    return boards.verdict(board, arena_bytes, len(model),
                          other_ram=FIRMWARE_STATIC_RAM + detector_ram(detector) + (FIRMWARE_STACK if stack_in_sram else 0),
                          other_flash=FIRMWARE_FLASH_BASE + FIRMWARE_FLASH_PER_OP * len(info.ops))


def built_verdict(board_name: str, arena_bytes: int, model: bytes, build) -> boards.Verdict:
    """The fit of the firmware as built for the board (sizes from its ELF)."""
    board = boards.get_board(board_name)
    s = build.sections
    stack_in_sram = board.ccm_bytes == 0
    other_ram = s.get(".data", 0) + s.get(".bss", 0) + (s.get(".stack", 0) if stack_in_sram else 0)
    return boards.verdict(board, arena_bytes, len(model), other_ram=other_ram,
                          other_flash=build.flash_bytes - len(model))


def firmware_platform_for(board_name: str) -> str:
    """The firmware_build platform with the board's memory map."""
    board = boards.get_board(board_name)
    return board.qemu_machine or board.name


def prepare(model: bytes, input_path: Optional[pathlib.Path] = None,
            host_run: Callable = host_outputs) -> Tuple[ModelInfo, List[np.ndarray], List[np.ndarray]]:
    """Reads the model, picks the test inputs, runs it on the host."""
    from ..toolchain import tflm_tree as tflm_sources
    info = read_model_info(model)
    check_ops_supported(info, tflm_sources.tflm_dir(required=False))
    inputs = load_inputs(input_path, info)
    expected = host_run(model, inputs, info)
    return info, inputs, expected


def can_build_firmware() -> bool:
    """TFLM sources, the Arm toolchain and QEMU: the firmware can be built and measured."""
    import shutil

    from . import build as firmware_build
    from . import emulate as firmware_run
    from ..toolchain import tflm_tree as tflm_sources
    return (tflm_sources.tflm_dir(required=False) is not None and not firmware_build.missing_tools()
            and shutil.which(firmware_run.QEMU) is not None)


def export_model(model_path: pathlib.Path, firmware_dir: pathlib.Path, input_path: Optional[pathlib.Path] = None,
                 board: str = "nucleo_f446re", detector=None) -> Tuple[Generated, boards.Verdict]:
    """The `export` command: refuses a model that does not fit `board`, else writes the sources.
    `detector` (a runtime.detection_native.DetectorSetup): the firmware also post-processes the
    outputs into boxes and prints them (docs/detection.md).

    With TFLM_DIR (and the Arm toolchain and QEMU) the arena is the one measured on the
    emulated Cortex-M4 (as `check` reports it), the firmware is built for the board and
    the fit is judged on its ELF; otherwise the arena is the check's estimate and the
    firmware around the model is estimated."""
    model_path = pathlib.Path(model_path)
    if not model_path.is_file():
        raise RNNPoolError(f"model file {model_path} does not exist")
    model = model_path.read_bytes()
    info = read_model_info(model)
    board = boards.get_board(board).name
    figure, label = arena_figure(model)
    arena = with_margin(figure)
    exact = can_build_firmware()
    extra = {}

    def refuse(verdict: boards.Verdict, how: str) -> None:
        if not verdict.fits:
            raise RNNPoolError(f"the model does not fit {verdict.board}: {verdict.message().split(': ', 1)[1]} "
                               f"(arena {arena:,} B = {label} {figure:,} B + margin; {how})")

    if not exact:
        verdict = board_verdict(board, arena, model, info, detector)
        refuse(verdict, "firmware code and data estimated")
    info, inputs, expected = prepare(model, input_path)
    if exact:
        measured = measured_arena(model_path, input_path, expected)
        if measured is not None:
            figure, label, matches = measured
            arena = with_margin(figure)
            extra["emulated_output_matches_host"] = matches
    extra.update({"arena_figure_bytes": figure, "arena_figure_source": label})
    if exact:
        from . import build as firmware_build
        with tempfile.TemporaryDirectory(prefix="rnnpool-export-") as tmp:
            trial = write_sources(pathlib.Path(tmp) / GENERATED, model, info, inputs, expected, arena,
                                  model_path.stem, board, extra, detector)
            try:
                build = firmware_build.build_firmware(trial.directory, firmware_platform_for(board),
                                                      pathlib.Path(tmp) / "build")
            except RNNPoolError as exc:
                if "overflow" not in str(exc):
                    raise
                refuse(board_verdict(board, arena, model, info, detector), "the linker reports an overflow")
                overflow = [line for line in str(exc).splitlines() if "overflow" in line]
                raise RNNPoolError(f"the model does not fit {board}: the firmware built for it does not link: "
                                   f"{overflow[-1].strip()} (arena {arena:,} B)") from None
        verdict = built_verdict(board, arena, model, build)
        refuse(verdict, f"sizes of the firmware built for {board}")
        extra.update({"firmware_flash_bytes": build.flash_bytes, "firmware_sections": build.sections})
    generated = write_sources(pathlib.Path(firmware_dir) / GENERATED, model, info, inputs, expected, arena,
                              model_path.stem, board, {**extra, "fit_judged_on": "built firmware" if exact
                                                       else "estimated firmware"}, detector)
    return generated, verdict
