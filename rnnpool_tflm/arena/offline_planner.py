"""An offline memory plan for TFLM: tensor offsets in the arena's head, better than its greedy plan.

TFLM's GreedyMemoryPlanner places buffers largest first into the first gap, which can leave
the head well above the largest set of buffers alive at one operator (Face-M4: 33 % above).
Here the lifetimes are TFLM's own (planner.plan_buffers: one time step per operator) and
several placement orders are tried, each buffer going to the lowest address where it
overlaps no buffer alive at the same time (scratch buffers are reserved too, so that TFLM,
which still places them itself around the fixed tensors, finds the gaps). Every candidate is
scored by replaying TFLM's placement of the whole plan (planner.place_greedy with the tensors
fixed), so the head reported is the head TFLM will use; the best candidate wins, TFLM's own
greedy plan included, so an offline plan is never worse.

In place (in_place.py): an operator whose output only ever overwrites input bytes it has
read for the last time may have its output overlap its input, at its lag. An overlap is only
offered when the input is read by no later operator (its lifetime ends at this op), the
output is created at this op, and it lowers the head; `check_plan` rejects any other overlap
of tensors alive at the same time (docs/arena.md, "Offline memory plan").
"""

from __future__ import annotations

import dataclasses
import random
from typing import Dict, List, Optional, Sequence, Tuple

from ..core.errors import RNNPoolError
from .graph import Graph, read_graph
from .in_place import InPlace, in_place_candidates
from .kernels import kernel_memory
from .planner import ARENA_ALIGNMENT, Buffer, place_greedy, plan_buffers
from .targets import get_target

ONLINE = -1
_RANDOM_ORDERS = 48  # extra shuffled placement orders tried after the fixed heuristics


class UnsafePlanError(RNNPoolError):
    """An offline plan overlaps tensors that are alive at the same time, outside a safe in-place pair."""


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    offsets: Tuple[int, ...]  # per tensor of all subgraphs (TFLM's metadata order); -1: online
    head_bytes: int  # TFLM's head (plan size) with these offsets, its scratch placed around them
    greedy_head_bytes: int  # TFLM's head without an offline plan
    live_bytes: int  # the most bytes (tensors + scratch) alive at one operator
    in_place: Tuple[InPlace, ...]  # overlaps the plan uses
    strategy: str  # which placement order won
    target: str
    reordered: bool = False  # convert.op_order changed the operator order for it

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "head_bytes": self.head_bytes,
            "greedy_head_bytes": self.greedy_head_bytes,
            "live_bytes": self.live_bytes,
            "strategy": self.strategy,
            "in_place": [dataclasses.asdict(p) for p in self.in_place],
        }


def _scratch(graph: Graph, target) -> List[Tuple[int, int]]:
    return [(op.index, nbytes) for op in graph.main.operators for nbytes in kernel_memory(graph, op, target).scratch]


def _overlap_ok(a: Buffer, b: Buffer, pairs: Dict[Tuple[int, int], InPlace]) -> bool:
    """Whether buffers a and b (alive at a common step) may share addresses as placed."""
    if a.offset >= b.end or b.offset >= a.end:
        return True
    if a.kind != "tensor" or b.kind != "tensor":
        return False
    for x, y in ((a, b), (b, a)):
        pair = pairs.get((x.ref, y.ref))
        if pair is not None and x.last == y.first == pair.op + 1 and x.offset - y.offset >= pair.lag:
            return True
    return False


def _times_meet(a: Buffer, b: Buffer) -> bool:
    return a.first <= b.last and b.first <= a.last


def _place(buffers: List[Buffer], order: Sequence[int], pairs: Dict[Tuple[int, int], InPlace]) -> None:
    """Lowest-address first fit in `order`, overlaps allowed only for in-place pairs."""
    placed: List[Buffer] = []
    for i in order:
        b = buffers[i]
        meeting = [p for p in placed if _times_meet(p, b)]
        candidates = {0} | {p.end for p in meeting}
        for p in meeting:  # in-place positions: the output at (input - lag) rounded down, or the reverse
            if b.kind == "tensor" and p.kind == "tensor":
                if (p.ref, b.ref) in pairs:
                    candidates.add(max(0, (p.offset - pairs[(p.ref, b.ref)].lag) // ARENA_ALIGNMENT * ARENA_ALIGNMENT))
                if (b.ref, p.ref) in pairs:
                    lag = pairs[(b.ref, p.ref)].lag
                    candidates.add(max(0, -(-(p.offset + lag) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT))
        for offset in sorted(candidates):
            b.offset = offset
            if all(_overlap_ok(b, p, pairs) for p in meeting):
                break
        placed.append(b)


def _orders(buffers: List[Buffer]) -> List[Tuple[str, List[int]]]:
    n = range(len(buffers))
    size = [b.size for b in buffers]
    span = [b.last - b.first + 1 for b in buffers]
    orders = [
        ("size", sorted(n, key=lambda i: (-size[i], buffers[i].first))),
        ("start", sorted(n, key=lambda i: (buffers[i].first, -size[i]))),
        ("span", sorted(n, key=lambda i: (-span[i], -size[i]))),
        ("area", sorted(n, key=lambda i: (-size[i] * span[i], buffers[i].first))),
    ]
    rng = random.Random(0)
    for k in range(_RANDOM_ORDERS):
        weights = [size[i] * rng.uniform(0.3, 1.7) for i in n]
        orders.append((f"random-{k}", sorted(n, key=lambda i: -weights[i])))
    return orders


def _fresh(buffers: List[Buffer]) -> List[Buffer]:
    return [dataclasses.replace(b, offset=-1, fixed=False) for b in buffers]


def _tflm_head(buffers: List[Buffer], tensor_offsets: Dict[int, int]) -> int:
    """TFLM's head with these tensors fixed and the scratch placed by its greedy planner."""
    replay = [
        dataclasses.replace(b, offset=tensor_offsets[b.ref], fixed=True)
        if b.kind == "tensor"
        else dataclasses.replace(b, offset=-1, fixed=False)
        for b in buffers
    ]
    return place_greedy(replay)


def live_bytes(buffers: Sequence[Buffer]) -> int:
    """The most planned bytes alive at one step: a plan without overlaps needs at least this."""
    steps = {s for b in buffers for s in range(b.first, b.last + 1)}
    return max((sum(b.size for b in buffers if b.alive_at(s)) for s in steps), default=0)


def _search(base: List[Buffer], allowed: Sequence[InPlace]):
    """(head, order name, tensor offsets, overlaps used) of the best placement order with these
    in-place pairs allowed; ties keep the earlier order."""
    pairs = {(p.input, p.output): p for p in allowed}
    best = None
    for name, order in _orders(base):
        trial = _fresh(base)
        _place(trial, order, pairs)
        offsets = {b.ref: b.offset for b in trial if b.kind == "tensor"}
        head = _tflm_head(base, offsets)
        if best is None or head < best[0]:
            best = (head, name, offsets, tuple(p for p in allowed if _uses(p, offsets, trial)))
    return best


def plan_memory(model, target="cortex-m4", in_place: bool = True) -> MemoryPlan:
    """The best offline plan found for `model` (.tflite bytes or arena.Graph) on `target`.
    Overlaps are used only where they lower the head: a plan with overlaps must beat the best
    plan without, and each overlap it uses is dropped again when the head does not grow
    without it."""
    graph = model if isinstance(model, Graph) else read_graph(model)
    target = get_target(target)
    base = plan_buffers(graph.main, _scratch(graph, target))
    greedy = _fresh(base)
    greedy_head = place_greedy(greedy)
    best = (greedy_head, "tflm-greedy", {b.ref: b.offset for b in greedy if b.kind == "tensor"}, ())
    plain = _search(base, ())
    if plain[0] < best[0]:
        best = plain
    candidates = tuple(in_place_candidates(graph, target)) if in_place else ()
    if candidates:
        overlapped = _search(base, candidates)
        if overlapped[0] < best[0]:
            for pair in overlapped[3]:
                fewer = _search(base, tuple(p for p in overlapped[3] if p != pair))
                if fewer[0] <= overlapped[0]:
                    overlapped = fewer
            best = overlapped
    head, strategy, offsets, used = best
    all_offsets = [ONLINE] * sum(len(s.tensors) for s in graph.subgraphs)
    for b in base:
        if b.kind == "tensor":
            all_offsets[b.ref] = offsets[b.ref]
    plan = MemoryPlan(tuple(all_offsets), head, greedy_head, live_bytes(base), used, strategy, target.name)
    check_plan(graph, plan.offsets, target)
    return plan


def _uses(pair: InPlace, offsets: Dict[int, int], buffers: List[Buffer]) -> bool:
    by_ref = {b.ref: b for b in buffers if b.kind == "tensor"}
    x, y = by_ref.get(pair.input), by_ref.get(pair.output)
    return x is not None and y is not None and not (x.offset >= y.end or y.offset >= x.end)


def check_plan(model, offsets: Optional[Sequence[int]] = None, target="cortex-m4") -> List[InPlace]:
    """Checks an offline plan (`offsets`, default: the model's own): one offset per tensor, only
    planned tensors offset (never constants or variables), non-negative and 16-byte aligned,
    and no two tensors alive at the same step overlapping, except an input and output of an
    in-place capable op placed at its lag. Returns the in-place overlaps the plan uses;
    UnsafePlanError names the first violation."""
    graph = model if isinstance(model, Graph) else read_graph(model)
    target = get_target(target)
    if offsets is None:
        offsets = graph.offline_offsets
        if offsets is None:
            raise RNNPoolError("the model has no offline memory plan (OfflineMemoryAllocation metadata)")
    total = sum(len(s.tensors) for s in graph.subgraphs)
    if len(offsets) != total:
        raise UnsafePlanError(f"offline plan: {len(offsets)} offsets for {total} tensors")
    sg = graph.main
    for t in sg.tensors:
        value = offsets[t.index]
        if value == ONLINE:
            continue
        if t.has_data or t.is_variable or t.nbytes == 0:
            kind = "a constant" if t.has_data else "a variable" if t.is_variable else "an empty tensor"
            raise UnsafePlanError(f"offline plan: tensor {t.index} ({t.name}) is {kind} but has offset {value}")
        if value < 0 or value % ARENA_ALIGNMENT:
            raise UnsafePlanError(
                f"offline plan: tensor {t.index} ({t.name}) has offset {value} "
                f"(expected -1 or a non-negative multiple of {ARENA_ALIGNMENT})"
            )
    if any(v != ONLINE for v in offsets[len(sg.tensors) :]):
        raise UnsafePlanError("offline plan: only the first subgraph's tensors may be planned offline")
    buffers = [b for b in plan_buffers(sg, [], offsets[: len(sg.tensors)]) if b.fixed]
    pairs = {(p.input, p.output): p for p in in_place_candidates(graph, target)}
    used = []
    for i, a in enumerate(buffers):
        for b in buffers[i + 1 :]:
            if not _times_meet(a, b) or a.offset >= b.end or b.offset >= a.end:
                continue
            if not _overlap_ok(a, b, pairs):
                raise UnsafePlanError(_overlap_message(graph, a, b, pairs))
            used.append(pairs.get((a.ref, b.ref)) or pairs[(b.ref, a.ref)])
    return used


def check_own_plan(model) -> None:
    """check_plan on the model's own offline plan, when it has one."""
    graph = model if isinstance(model, Graph) else read_graph(model)
    if graph.offline_offsets is not None:
        check_plan(graph)


def _overlap_message(graph: Graph, a: Buffer, b: Buffer, pairs) -> str:
    names = {t.index: t.name for t in graph.main.tensors}
    step = max(a.first, b.first)
    text = (
        f"offline plan overlaps live tensors: tensor {a.ref} ({names[a.ref]}, {a.offset:,}..{a.end:,}) and "
        f"tensor {b.ref} ({names[b.ref]}, {b.offset:,}..{b.end:,}) are both alive at operator {step - 1}"
    )
    for x, y in ((a, b), (b, a)):
        pair = pairs.get((x.ref, y.ref))
        if pair is not None:
            text += (
                f"; operator {pair.op} may write its output over its input only when input_start - "
                f"output_start >= {pair.lag} (here {x.offset - y.offset})"
            )
    return text
