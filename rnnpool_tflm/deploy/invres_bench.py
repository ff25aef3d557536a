"""The fused InvertedResidual kernel against the CMSIS-NN kernels TFLM uses for the unfused
block, on the emulated Cortex-M4 (`rnnpool-tflm bench ir --target m4`).

One bare-metal program (tests/m4/invres_cmsis.c) runs each block both ways and checks both
outputs against the golden reference: the unfused block with CMSIS-NN's functions called as
TFLM's cmsis_nn kernels call them, linked from TFLM's own library build (build.tflm_library:
TFLM's Makefile flags), and the fused kernel compiled with the firmware's flags. It runs in
QEMU's mps2-an386 (4 MB RAM: the unfused block's whole maps do not fit an F405) under
``-icount shift=0``; SysTick ticks become instructions through a calibration loop of known
length in the same program.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import subprocess
import tempfile
from typing import List, Optional, Sequence

from ..core import boards
from ..core.errors import RNNPoolError
from ..core.sources import source_dir
from ..runtime import invres_harness
from ..runtime.m4_harness import HARNESS_DIR, HarnessCase, parse_harness_output
from . import build, emulate

MACHINE = "mps2-an386"
SOURCES = ("invres_cmsis.c", "invres_harness.c")
_CMSIS_LINE = re.compile(
    r"^cmsis (\d+) (ok|FAIL) expand=(\d+) depthwise=(\d+) project=(\d+) add=(\d+) "
    r"mismatches=(\d+)$",
    re.M,
)


@dataclasses.dataclass(frozen=True)
class BlockComparison:
    """Instructions of one block: CMSIS-NN per unfused operator, and the fused kernel."""

    cmsis_ok: bool
    cmsis_mismatches: int
    cmsis_instructions: dict  # {"expand": n, "depthwise": n, "project": n, "add": n}
    fused_ok: bool
    fused_instructions: float
    fused_scratch_bytes: int
    fused_prepared_bytes: int

    @property
    def cmsis_total(self) -> float:
        return float(sum(self.cmsis_instructions.values()))

    @property
    def ratio(self) -> float:
        """fused / CMSIS-NN (below 1: the fused kernel executes fewer instructions)."""
        return self.fused_instructions / self.cmsis_total


def _compile(source: pathlib.Path, obj: pathlib.Path, includes: Sequence[pathlib.Path], board: boards.Board) -> None:
    cmd = build._compile_command(
        source, obj, build.APP_OPT, includes, (*build.APP_WARNINGS, *(f"-D{d}" for d in build.board_defines(board)))
    )
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RNNPoolError(f"compiling {source} failed:\n{done.stderr.strip()[-4000:]}")


def compare(
    cases: Sequence[HarnessCase],
    tflm_root: Optional[pathlib.Path] = None,
    timeout: float = 900.0,
    workdir: Optional[pathlib.Path] = None,
    log=None,
) -> List[BlockComparison]:
    """Builds and runs the comparison program for these cases (TFLM_DIR needed for CMSIS-NN)."""
    build.require_tools()
    emulate.require_qemu()
    library = build.tflm_library(tflm_root, log=log)
    board = boards.get_board(MACHINE)
    with tempfile.TemporaryDirectory(prefix="invres_bench_") as tmp:
        work = pathlib.Path(workdir) if workdir is not None else pathlib.Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        (work / "invres_cases.h").write_text(invres_harness.cases_header(cases))
        (work / "invres_cmsis_cases.h").write_text(invres_harness.cmsis_header(cases))
        includes = [
            work,
            HARNESS_DIR,
            source_dir("inverted_residual"),
            source_dir("common"),
            build.PLATFORM_DIR,
            *library.include_dirs,
        ]
        sources = [
            *(HARNESS_DIR / s for s in SOURCES),
            *invres_harness.kernel_sources(),
            *(build.PLATFORM_DIR / s for s in build.platform_sources(board)),
        ]
        objs = []
        for i, source in enumerate(sources):
            obj = work / f"{i:02d}_{source.stem}.o"
            _compile(source, obj, includes, board)
            objs.append(str(obj))
        elf = work / "invres_bench.elf"
        cmd = [
            build.CC,
            *build.CPU_FLAGS,
            "-T",
            str(build.PLATFORM_DIR / board.linker_script),
            f"-L{build.PLATFORM_DIR}",
            *build.LINK_FLAGS,
            *objs,
            str(library.path),
            "-lm",
            "-o",
            str(elf),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RNNPoolError(f"linking the InvertedResidual benchmark failed:\n{done.stderr.strip()[-4000:]}")
        run = emulate.run_elf(elf, board.qemu_machine, timeout)
    fused = parse_harness_output(run.output, len(cases), run.exit_code)
    lines = {int(m[1]): m for m in _CMSIS_LINE.finditer(run.output)}
    if sorted(lines) != list(range(len(cases))):
        raise RNNPoolError(f"the benchmark's output is incomplete (exit status {run.exit_code}):\n{run.output[-3000:]}")
    per_tick = fused.instructions_per_tick
    results = []
    for i, r in enumerate(fused.results):
        m = lines[i]
        ticks = dict(zip(("expand", "depthwise", "project", "add"), (int(v) for v in m.groups()[2:6])))
        results.append(
            BlockComparison(
                cmsis_ok=m[2] == "ok",
                cmsis_mismatches=int(m[7]),
                cmsis_instructions={k: round(v * per_tick) for k, v in ticks.items()},
                fused_ok=r.ok,
                fused_instructions=round(r.instructions),
                fused_scratch_bytes=r.scratch_bytes,
                fused_prepared_bytes=r.prepared_bytes,
            )
        )
    return results
