"""Runs the firmware in QEMU and reads what it reports (`rnnpool-tflm emulate`).

The firmware (firmware/src/main.cc) prints "key: value" lines; under
``-icount shift=0`` QEMU executes one instruction per virtual nanosecond, so
SysTick ticks are a deterministic function of executed instructions, and the
firmware's calibration loop (2 instructions per iteration) gives the ratio.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional

from . import build as firmware_build
from . import export as firmware_export
from . import sources as firmware_sources
from ..core.errors import RNNPoolError

QEMU = "qemu-system-arm"
EXIT_MEANINGS = {0: "ok", 1: "output differs from the expected one", 2: "bad model", 3: "hard fault",
                 4: "operator registration failed", 5: "AllocateTensors failed",
                 6: "tensors differ from the embedded test data", 7: "Invoke failed"}
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
        ticks, cal_ins, cal_ticks = (self.integer(k) for k in
                                     ("invoke_ticks", "calibration_instructions", "calibration_ticks"))
        if None in (ticks, cal_ins, cal_ticks) or cal_ticks == 0:
            return None
        return (ticks * cal_ins + cal_ticks // 2) // cal_ticks

    def op_instructions(self) -> Optional[List[dict]]:
        """Instructions per operator of the Invoke ({index, op, instructions}, from the firmware's
        OpProfiler and the calibration); None without a calibration (boards: cycles)."""
        cal_ins, cal_ticks = self.integer("calibration_instructions"), self.integer("calibration_ticks")
        if cal_ins is None or not cal_ticks:
            return None
        return [{"index": int(m[1]), "op": m[2], "instructions": (int(m[3]) * cal_ins + cal_ticks // 2) // cal_ticks}
                for m in _OP_TICKS.finditer(self.output)]

    @property
    def output_matches_expected(self) -> bool:
        return self.values.get("output_matches_expected") == "yes"

    def failure(self) -> str:
        """One line: why the firmware stopped, with its own error messages."""
        meaning = EXIT_MEANINGS.get(self.exit_code, f"exit status {self.exit_code}")
        said = [line for line in self.output.splitlines()
                if line.strip() and not line.startswith("rnnpool-tflm firmware:")
                and (line.startswith("error:") or not _LINE.match(line.strip()))]
        return f"the firmware stopped: {meaning} (status {self.exit_code})" + \
            (f"; it printed: {' | '.join(s.strip() for s in said[-6:])}" if said else "")


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
    cmd = [QEMU, "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
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
    def ram_bytes(self) -> int:
        """.data + .bss + .ccm of the ELF plus the arena at its measured size (stack excluded)."""
        return self.build.static_ram_bytes + (self.arena_used_bytes + 15) // 16 * 16

    def as_dict(self) -> dict:
        instructions = self.run.instructions
        clock = self.build.platform.clock_hz
        return {
            "machine": self.machine, "output_matches_host": self.output_matches_host,
            "arena_used_bytes": self.arena_used_bytes, "instructions": instructions,
            "flash_bytes": self.build.flash_bytes, "ram_bytes": self.ram_bytes,
            "static_ram_bytes": self.build.static_ram_bytes, "stack_bytes": self.build.stack_bytes,
            "model_bytes": self.generated.manifest["model_bytes"], "ops": self.generated.manifest["ops"],
            # flash_bytes includes the embedded test input and expected output:
            "test_data_bytes": sum(a.nbytes for a in (*self.generated.inputs, *self.generated.expected)),
            "invoke_ticks": self.run.integer("invoke_ticks"),
            # Not a cycle count: QEMU is not cycle-accurate; instructions at 1 per cycle.
            "ms_at_core_clock_if_1_ipc": None if instructions is None else round(instructions / clock * 1e3, 3),
            "core_clock_hz": clock,
            "op_instructions": self.run.op_instructions(),
        }


def emulate_model(model_path: pathlib.Path, input_path: Optional[pathlib.Path] = None,
                  machine: str = "netduinoplus2", keep_dir: Optional[pathlib.Path] = None,
                  arena_bytes: Optional[int] = None, timeout: float = 600.0, log=None,
                  host_run=firmware_export.host_outputs) -> Emulation:
    """Exports `model_path` into a build folder, builds the firmware for the QEMU
    `machine` and runs it. The arena is the rest of the SRAM block (so every model
    that fits gets a measured arena) unless `arena_bytes` fixes it."""
    platform = firmware_build.get_platform(machine)
    if platform.qemu_machine is None:
        raise RNNPoolError(f"{machine} is not an emulated machine; choose from {', '.join(firmware_build.QEMU_MACHINES)}")
    model_path = pathlib.Path(model_path)
    if not model_path.is_file():
        raise RNNPoolError(f"model file {model_path} does not exist")
    model = model_path.read_bytes()
    from ..toolchain import tflm_tree as tflm_sources
    tflm_sources.tflm_dir()  # a clear error naming TFLM_DIR before any work
    firmware_build.require_tools()
    require_qemu()
    info, inputs, expected = firmware_export.prepare(model, input_path, host_run=host_run)

    with tempfile.TemporaryDirectory(prefix="rnnpool-emulate-") as tmp:
        work = pathlib.Path(keep_dir) if keep_dir else pathlib.Path(tmp)
        generated = firmware_sources.write_sources(work / "generated", model, info, inputs, expected,
                                                  arena_bytes or 16, model_path.stem, platform.board)
        defines: List[str] = [] if arena_bytes else ["RNNPOOL_ARENA_FILL_SRAM"]
        try:
            build = firmware_build.build_firmware(generated.directory, platform.name, work / "build", defines, log=log)
        except RNNPoolError as exc:
            if "overflow" in str(exc):
                raise DoesNotFit(f"the model does not fit {machine}'s memory ({len(model):,} B model): "
                                   f"try --machine mps2-an386; linker: {str(exc).splitlines()[-1]}") from None
            raise
        run = run_elf(build.elf, platform.qemu_machine, timeout)
        if keep_dir:
            (work / "qemu_output.txt").write_text(run.output)
    if run.exit_code not in (0, 1):
        if run.exit_code == 5 and machine == "netduinoplus2" and not arena_bytes:
            raise DoesNotFit(run.failure() + " (try --machine mps2-an386 for models larger than the F405)")
        raise RNNPoolError(run.failure())
    return Emulation(platform.name, run, build, generated)


def measure_arena(model_path: pathlib.Path, input_path: Optional[pathlib.Path] = None, **kwargs) -> Emulation:
    """The model on the emulated STM32F405, or on mps2-an386 when it does not fit the F405:
    every model gets a measured arena (the same firmware and flags on both, so the same figure)."""
    try:
        return emulate_model(model_path, input_path, "netduinoplus2", **kwargs)
    except DoesNotFit:
        return emulate_model(model_path, input_path, "mps2-an386", **kwargs)
