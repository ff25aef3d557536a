"""The toolkit's model of TensorFlow Lite Micro's tensor arena (docs/arena.md).

estimate_arena(model, target) predicts what MicroInterpreter::arena_used_bytes()
reports after AllocateTensors() on "cortex-m4" (CMSIS-NN firmware) or "x86-64" (the
tflite-micro Python interpreter); arena_report() adds the per-operator plan.
"""

from .estimate import ArenaEstimate, ArenaReport, LiveBuffer, OpArena, OpReport, arena_report, estimate_arena
from .targets import TARGETS, Target, get_target

__all__ = [
    "ArenaEstimate",
    "ArenaReport",
    "LiveBuffer",
    "OpArena",
    "OpReport",
    "TARGETS",
    "Target",
    "arena_report",
    "estimate_arena",
    "get_target",
]
