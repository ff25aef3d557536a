"""The converter's last step: write an offline memory plan into the model (or leave TFLM's).

`offline` (the default): arena.offline_planner finds tensor offsets from the model's exact
lifetimes, in-place overlaps of streamed ops where their lag allows and it helps, and the
plan goes into the `OfflineMemoryAllocation` metadata (tflite.offline_plan). The operators
are also tried in a memory-aware order (op_order.py); that order is kept when its plan is
smaller. When TFLM's own greedy plan is as small, no plan is written. `greedy`: any plan is removed. The plan is for
the exact tensor list, so it must come after every graph rewrite.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from ..arena.offline_planner import MemoryPlan, check_plan, plan_memory
from ..core.errors import RNNPoolError
from ..tflite import offline_plan
from .op_order import reorder

MODES = ("offline", "greedy")
DEFAULT_MODE = "offline"


def apply_memory_plan(
    tflite: bytes, mode: str = DEFAULT_MODE, target: str = "cortex-m4", in_place: bool = True
) -> Tuple[bytes, Optional[MemoryPlan]]:
    """(`tflite` with its memory plan set by `mode`, the plan or None when TFLM plans online).
    `target`: the arena the plan is sized for (scratch differs between targets; the plan stays
    valid on either, since TFLM places scratch around it)."""
    if mode not in MODES:
        raise RNNPoolError(f"memory plan {mode!r}: expected one of {', '.join(MODES)}")
    cleared = offline_plan.write_with_plan(tflite, None)
    if mode == "greedy":
        return cleared, None
    plan = plan_memory(cleared, target, in_place)
    reordered = reorder(cleared)
    if reordered is not None:
        other = plan_memory(reordered, target, in_place)
        if other.head_bytes < plan.head_bytes:
            cleared, plan = reordered, dataclasses.replace(other, reordered=True)
    if plan.head_bytes >= plan.greedy_head_bytes and not plan.reordered:
        return cleared, None
    planned = offline_plan.write_with_plan(cleared, plan.offsets)
    check_plan(planned, None, target)  # what TFLM will read back
    return planned, plan


def describe(plan: Optional[MemoryPlan]) -> str:
    """One line for the converter's summary."""
    if plan is None:
        return "memory plan: TFLM's greedy planner (online)"
    overlaps = ", ".join(f"op {p.op} output over its input (lag {p.lag:,} B)" for p in plan.in_place)
    return (
        f"memory plan: offline, head {plan.head_bytes:,} B (TFLM greedy {plan.greedy_head_bytes:,} B, "
        f"largest live set {plan.live_bytes:,} B)"
        + ("; operators reordered" if plan.reordered else "")
        + (f"; in place: {overlaps}" if overlaps else "")
    )
