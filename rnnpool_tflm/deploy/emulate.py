"""Runs the firmware in QEMU and reads what it reports (`rnnpool-tflm emulate`).

The firmware (firmware/src/main.cc) prints "key: value" lines; under
``-icount shift=0`` QEMU executes one instruction per virtual nanosecond, so
SysTick ticks are a deterministic function of executed instructions, and the
firmware's calibration loop (2 instructions per iteration) gives the ratio.
For a detector the firmware also prints its boxes (docs/detection.md), which are
compared with the host's bit for bit.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import struct
import subprocess
import tempfile
from typing import Dict, List, Optional

from ..core import boards
from ..core.errors import RNNPoolError
from ..core.files import require_file
from ..runtime.m4_harness import QEMU, QEMU_FLAGS  # the same emulator, flags and -icount as the kernel harness
from . import build as firmware_build
from . import sources as firmware_sources
from .host_run import host_outputs, prepare

EXIT_MEANINGS = {
    0: "ok",
    1: "output differs from the expected one",
    2: "bad model",
    3: "hard fault",
    4: "operator registration failed",
    5: "AllocateTensors failed",
    6: "tensors differ from the embedded test data",
    7: "Invoke failed",
    8: "detector post-processing failed",
}
_LINE = re.compile(r"^([a-z_0-9]+): (.*)$")
_OP_TICKS = re.compile(r"^op_ticks: (\d+) (\S+) (\d+)$", re.M)


class DoesNotFit(RNNPoolError):
    """The model's code or arena does not fit the emulated machine's memory."""


@dataclasses.dataclass(frozen=True)
class FirmwareRun:
    exit_code: int
    output: str
    values: Dict[str, str]

    def integer(self, key: str) -> Optional[int]:
        value = self.values.get(key)
        match = re.match(r"(0x[0-9a-fA-F]+|\d+)", value or "")
        return int(match.group(1), 0) if match else None

    @property
    def instructions(self) -> Optional[int]:
        return self.instructions_of("invoke_ticks")

    def instructions_of(self, key: str) -> Optional[int]:
        """Instructions executed during a printed tick count (QEMU's calibration ratio)."""
        ticks, cal_ins, cal_ticks = (self.integer(k) for k in (key, "calibration_instructions", "calibration_ticks"))
        if None in (ticks, cal_ins, cal_ticks) or cal_ticks == 0:
            return None
        return (ticks * cal_ins + cal_ticks // 2) // cal_ticks

    def op_instructions(self) -> Optional[List[dict]]:
        """Instructions per operator of the Invoke ({index, op, instructions}, from the firmware's
        OpProfiler and the calibration); None without a calibration (boards: cycles)."""
        cal_ins, cal_ticks = self.integer("calibration_instructions"), self.integer("calibration_ticks")
        if cal_ins is None or not cal_ticks:
            return None
        return [
            {"index": int(m[1]), "op": m[2], "instructions": (int(m[3]) * cal_ins + cal_ticks // 2) // cal_ticks}
            for m in _OP_TICKS.finditer(self.output)
        ]

    @property
    def boxes(self) -> Optional[List[tuple]]:
        """The detector's boxes as the firmware printed them, (x1, y1, x2, y2, score, label, prior)
        with the floats read from their bit patterns; None when it printed none."""
        if "detections" not in self.values:
            return None
        return [parse_box(line) for line in re.findall(r"^box: (.*)$", self.output, re.M)]

    @property
    def output_matches_expected(self) -> bool:
        return self.values.get("output_matches_expected") == "yes"

    def failure(self) -> str:
        """One line: why the firmware stopped, with its own error messages."""
        meaning = EXIT_MEANINGS.get(self.exit_code, f"exit status {self.exit_code}")
        said = [
            line
            for line in self.output.splitlines()
            if line.strip()
            and not line.startswith("rnnpool-tflm firmware:")
            and (line.startswith("error:") or not _LINE.match(line.strip()))
        ]
        return f"the firmware stopped: {meaning} (status {self.exit_code})" + (
            f"; it printed: {' | '.join(s.strip() for s in said[-6:])}" if said else ""
        )


def parse_box(line: str) -> tuple:
    """ "0x3e0a3d71 0x3e4ccccd 0x3e8f5c29 0x3eb33333 0x3f7ae148 1 1234 (px ...)" -> floats and ints."""
    fields = line.split()
    try:
        floats = [struct.unpack("<f", struct.pack("<I", int(f, 16)))[0] for f in fields[:5]]
        return (*floats, int(fields[5]), int(fields[6]))
    except (ValueError, IndexError):
        raise RNNPoolError(f"the firmware printed a malformed box line: {line!r}") from None


def parse_output(text: str) -> Dict[str, str]:
    values: Dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            values.setdefault(match.group(1), match.group(2).strip())
    return values


def require_qemu() -> None:
    if shutil.which(QEMU) is None:
        raise RNNPoolError(f"{QEMU} is not installed (Debian package qemu-system-arm)")


def run_elf(elf: pathlib.Path, machine: str, timeout: float = 600.0) -> FirmwareRun:
    """Runs a semihosting ELF to completion; its main() return value is the exit status."""
    require_qemu()
    cmd = [QEMU, "-M", machine, *QEMU_FLAGS, "-kernel", str(elf)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RNNPoolError(f"QEMU ({machine}) did not finish within {timeout:.0f} s") from None
    text = done.stdout + done.stderr
    return FirmwareRun(done.returncode, text, parse_output(text))


@dataclasses.dataclass(frozen=True)
class Emulation:
    machine: str
    run: FirmwareRun
    build: firmware_build.FirmwareBuild
    generated: firmware_sources.Generated

    @property
    def arena_used_bytes(self) -> int:
        return self.run.integer("arena_used_bytes")

    @property
    def output_matches_host(self) -> bool:
        """The firmware compared its output with the host's byte for byte; the digest agrees too."""
        expected = [o["fnv1a"] for o in self.generated.manifest["outputs"]]
        digests = re.findall(r"^output_fnv1a: (0x[0-9a-f]+)", self.run.output, re.M)
        return self.run.output_matches_expected and digests == expected

    @property
    def output_sha256(self):
        """SHA-256 of the output tensors' bytes in order (runtime.host.output_sha256) as the firmware
        computed them: they are the host's bytes, compared byte for byte on the device, so the digest
        is the host's; None when the device's output differs (no digest of bytes not read back)."""
        return self.generated.manifest["output_sha256"] if self.output_matches_host else None

    @property
    def boxes_match_host(self) -> Optional[bool]:
        """The firmware's boxes equal the host's (C post-processing of the host's outputs) exactly;
        None when the model is not a detector."""
        detector = self.generated.manifest.get("detector")
        if detector is None:
            return None
        printed = self.run.boxes
        return (
            printed is not None
            and self.run.integer("detections") == len(printed)
            and [list(b) for b in printed] == detector["host_boxes"]
        )

    def boxes_in_pixels(self) -> Optional[List[List[float]]]:
        """[x1, y1, x2, y2, score] per printed box, coordinates in pixels of the model's input."""
        detector = self.generated.manifest.get("detector")
        if detector is None or self.run.boxes is None:
            return None
        rows, cols = detector["image_size"]
        return [
            [round(b[0] * cols, 3), round(b[1] * rows, 3), round(b[2] * cols, 3), round(b[3] * rows, 3), round(b[4], 6)]
            for b in self.run.boxes
        ]

    @property
    def stack_used_bytes(self) -> Optional[int]:
        """The stack's high-water mark the firmware printed (of stack_bytes reserved)."""
        return self.run.integer("stack_used_bytes")

    @property
    def ram_bytes(self) -> int:
        """.data + .bss + .ccm of the ELF plus the arena at its measured size (stack excluded)."""
        return self.build.static_ram_bytes + (self.arena_used_bytes + 15) // 16 * 16

    def as_dict(self) -> dict:
        instructions = self.run.instructions
        clock = self.build.board.clock_hz
        return {
            "machine": self.machine,
            "output_matches_host": self.output_matches_host,
            "output_sha256": self.output_sha256,
            "arena_used_bytes": self.arena_used_bytes,
            "instructions": instructions,
            "flash_bytes": self.build.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "static_ram_bytes": self.build.static_ram_bytes,
            "stack_bytes": self.build.stack_bytes,
            "stack_used_bytes": self.stack_used_bytes,
            "model_bytes": self.generated.manifest["model_bytes"],
            "ops": self.generated.manifest["ops"],
            # flash_bytes includes the embedded test input and expected output:
            "test_data_bytes": sum(a.nbytes for a in (*self.generated.inputs, *self.generated.expected)),
            "invoke_ticks": self.run.integer("invoke_ticks"),
            # Not a cycle count: QEMU is not cycle-accurate; instructions at 1 per cycle.
            "ms_at_core_clock_if_1_ipc": None if instructions is None else round(instructions / clock * 1e3, 3),
            "core_clock_hz": clock,
            "op_instructions": self.run.op_instructions(),
            **(
                {}
                if self.boxes_match_host is None
                else {
                    "boxes": self.boxes_in_pixels(),
                    "boxes_match_host": self.boxes_match_host,
                    "detection_instructions": self.run.instructions_of("detection_ticks"),
                }
            ),
        }


def emulate_model(
    model_path: pathlib.Path,
    input_path: Optional[pathlib.Path] = None,
    machine: str = "netduinoplus2",
    keep_dir: Optional[pathlib.Path] = None,
    arena_bytes: Optional[int] = None,
    timeout: float = 600.0,
    log=None,
    host_run=host_outputs,
    detector=None,
) -> Emulation:
    """Exports `model_path` into a build folder, builds the firmware for the QEMU
    `machine` and runs it. The arena is the rest of the SRAM block (so every model
    that fits gets a measured arena) unless `arena_bytes` fixes it. `detector` (a
    runtime.detection_native.DetectorSetup): the firmware also prints the boxes."""
    board = next((b for b in boards.BOARDS.values() if b.qemu_machine and machine in (b.name, b.qemu_machine)), None)
    if board is None:
        raise RNNPoolError(f"{machine} is not an emulated machine; choose from {', '.join(boards.QEMU_MACHINES)}")
    model_path = require_file(model_path, "model file")
    model = model_path.read_bytes()
    from ..toolchain import tflm_tree as tflm_sources

    tflm_sources.tflm_dir()  # a clear error naming TFLM_DIR before any work
    firmware_build.require_tools()
    require_qemu()
    info, inputs, expected = prepare(model, input_path, host_run=host_run)

    with tempfile.TemporaryDirectory(prefix="rnnpool-emulate-") as tmp:
        work = pathlib.Path(keep_dir) if keep_dir else pathlib.Path(tmp)
        generated = firmware_sources.write_sources(
            work / "generated",
            model,
            info,
            inputs,
            expected,
            arena_bytes or 16,
            model_path.stem,
            board.name,
            detector=detector,
        )
        defines: List[str] = [] if arena_bytes else ["RNNPOOL_ARENA_FILL_SRAM"]
        try:
            build = firmware_build.build_firmware(generated.directory, board, work / "build", defines, log=log)
        except RNNPoolError as exc:
            if "overflow" in str(exc):
                raise DoesNotFit(
                    f"the model does not fit {machine}'s memory ({len(model):,} B model): "
                    f"try --machine mps2-an386; linker: {str(exc).splitlines()[-1]}"
                ) from None
            raise
        run = run_elf(build.elf, board.qemu_machine, timeout)
        if keep_dir:
            (work / "qemu_output.txt").write_text(run.output)
    if run.exit_code not in (0, 1):
        if run.exit_code == 5 and board.qemu_machine == "netduinoplus2" and not arena_bytes:
            raise DoesNotFit(run.failure() + " (try --machine mps2-an386 for models larger than the F405)")
        raise RNNPoolError(run.failure())
    return Emulation(board.qemu_machine, run, build, generated)


def measure_arena(model_path: pathlib.Path, input_path: Optional[pathlib.Path] = None, **kwargs) -> Emulation:
    """The model on the emulated STM32F405, or on mps2-an386 when it does not fit the F405:
    every model gets a measured arena (the same firmware and flags on both, so the same figure)."""
    try:
        return emulate_model(model_path, input_path, "netduinoplus2", **kwargs)
    except DoesNotFit:
        return emulate_model(model_path, input_path, "mps2-an386", **kwargs)
