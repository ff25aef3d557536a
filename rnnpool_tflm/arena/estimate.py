"""The toolkit's prediction of TFLM's tensor-arena size for a model on a target."""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

from .allocator import replay, smallest_arena
from .graph import Graph, read_graph
from .kernels import KernelMemory, kernel_memory
from .planner import Buffer, place_greedy, plan_buffers
from .targets import Target, get_target

# Far larger than any model: the arena end is 16-aligned, as for any multiple of 16.
_BIG_ARENA = 1 << 40


@dataclasses.dataclass(frozen=True)
class LiveBuffer:
    """A planned buffer alive at an operator."""

    kind: str  # "tensor" or "scratch"
    name: str  # tensor name, or "scratch #n of OP"
    tensor: Optional[int]
    nbytes: int  # requested
    offset: int  # in the head
    size: int  # planned (rounded to 16)


@dataclasses.dataclass(frozen=True)
class OpArena:
    index: int
    op: str
    persistent_bytes: int  # tail bytes this op took: builtin options + OpData + per-channel data
    scratch_bytes: int  # scratch it requested (planned in the head at its step)
    live_bytes: int  # planned bytes alive at this op (tensors + its scratch)
    high_water_bytes: int  # highest head address in use at this op
    certain: bool
    note: str = ""


@dataclasses.dataclass(frozen=True)
class ArenaEstimate:
    """The arena TFLM would report for a model: `total_bytes` is what
    MicroInterpreter::arena_used_bytes() returns after AllocateTensors()."""

    target: str
    total_bytes: int
    head_bytes: int  # non-persistent: planned tensors + scratch (the memory plan)
    tail_bytes: int  # persistent
    min_arena_bytes: int  # smallest arena size AllocateTensors accepts (16-aligned start)
    per_op: Tuple[OpArena, ...]
    tail_parts: Dict[str, int]
    certain: bool
    notes: Tuple[str, ...]
    label: str = "estimate"
    greedy_total_bytes: Optional[int] = None  # with an offline plan: the arena TFLM's greedy plan would need

    def as_dict(self) -> dict:
        return {
            "target": self.target,
            "label": self.label,
            "total_bytes": self.total_bytes,
            "head_bytes": self.head_bytes,
            "tail_bytes": self.tail_bytes,
            "greedy_total_bytes": self.greedy_total_bytes,
            "min_arena_bytes": self.min_arena_bytes,
            "certain": self.certain,
            "notes": list(self.notes),
            "tail_parts": dict(self.tail_parts),
            "per_op": [dataclasses.asdict(op) for op in self.per_op],
        }


@dataclasses.dataclass(frozen=True)
class OpReport:
    index: int
    op: str
    live: Tuple[LiveBuffer, ...]  # planned buffers alive at this op, by address
    live_bytes: int
    high_water_bytes: int  # highest head address in use at this op
    arena_high_water_bytes: int  # the same plus the (constant) tail: arena bytes in use
    greedy_high_water_bytes: Optional[int] = None  # offline-planned model: the same under TFLM's greedy plan


@dataclasses.dataclass(frozen=True)
class ArenaReport:
    """Per-operator view of the memory plan, for profiling."""

    estimate: ArenaEstimate
    ops: Tuple[OpReport, ...]
    peak_op: Optional[int]  # the operator where the head reaches its high-water mark

    def format(self) -> str:
        e = self.estimate
        lines = [
            f"arena ({e.label}, {e.target}): {e.total_bytes:,} B = head {e.head_bytes:,} + "
            f"tail {e.tail_bytes:,}; smallest arena {e.min_arena_bytes:,} B"
        ]
        if e.greedy_total_bytes is not None:
            lines.append(f"  offline memory plan; TFLM's greedy plan would need {e.greedy_total_bytes:,} B")
        for op in self.ops:
            mark = "  <- peak" if op.index == self.peak_op else ""
            greedy = "" if op.greedy_high_water_bytes is None else f" (greedy {op.greedy_high_water_bytes:,} B)"
            lines.append(
                f"  #{op.index:<3} {op.op:<20} live {op.live_bytes:>9,} B  high-water "
                f"{op.high_water_bytes:>9,} B{greedy}{mark}"
            )
            for b in op.live:
                lines.append(f"        {b.kind:<7} {b.name[:48]:<48} {b.size:>9,} B @ {b.offset:,}")
        for note in e.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


@dataclasses.dataclass
class _Analysis:
    graph: Graph
    target: Target
    kernels: List[KernelMemory]
    buffers: List[Buffer]
    plan_bytes: int
    greedy: Optional[List[Buffer]] = None  # offline-planned model: TFLM's own placement of the same buffers
    greedy_bytes: int = 0


def _analyse(model, target) -> _Analysis:
    graph = model if isinstance(model, Graph) else read_graph(model)
    target = get_target(target)
    kernels = [kernel_memory(graph, op, target) for op in graph.main.operators]
    scratch = [(op.index, nbytes) for op, memory in zip(graph.main.operators, kernels) for nbytes in memory.scratch]
    offline = graph.offline_offsets[: len(graph.main.tensors)] if graph.offline_offsets is not None else None
    buffers = plan_buffers(graph.main, scratch, offline)
    analysis = _Analysis(graph, target, kernels, buffers, place_greedy(buffers))
    if offline is not None:
        analysis.greedy = plan_buffers(graph.main, scratch)
        analysis.greedy_bytes = place_greedy(analysis.greedy)
    return analysis


def _notes(a: _Analysis) -> List[str]:
    notes = list(dict.fromkeys(m.note for m in a.kernels if m.note))
    if len(a.graph.subgraphs) > 1:
        notes.append(f"{len(a.graph.subgraphs)} subgraphs: only the first is planned")
    if a.graph.offline_offsets is not None:
        fixed = sum(b.fixed for b in a.buffers)
        notes.append(f"offline memory plan: {fixed} of {len(a.buffers)} buffers at the model's offsets")
    return notes


def _op_views(a: _Analysis, tail: int) -> List[OpReport]:
    names = {t.index: t.name for t in a.graph.main.tensors}
    reports = []
    for op in a.graph.main.operators:
        scope = op.index + 1
        live = []
        for b in a.buffers:
            if b.alive_at(scope):
                name = names[b.ref] if b.kind == "tensor" else f"scratch #{b.ref} of op {b.op}"
                live.append(LiveBuffer(b.kind, name, b.ref if b.kind == "tensor" else None, b.nbytes, b.offset, b.size))
        live.sort(key=lambda b: b.offset)
        high_water = max((b.offset + b.size for b in live), default=0)
        greedy = None if a.greedy is None else max((b.end for b in a.greedy if b.alive_at(scope)), default=0)
        reports.append(
            OpReport(op.index, op.name, tuple(live), sum(b.size for b in live), high_water, tail + high_water, greedy)
        )
    return reports


def _estimate(a: _Analysis) -> Tuple[ArenaEstimate, List[OpReport]]:
    result = replay(a.graph, a.target, a.kernels, a.plan_bytes, len(a.buffers), _BIG_ARENA)
    minimum = smallest_arena(a.graph, a.target, a.kernels, a.plan_bytes, len(a.buffers), result.head + result.tail)
    views = _op_views(a, result.tail)
    per_op = tuple(
        OpArena(
            op.index,
            op.name,
            cost.total,
            sum(memory.scratch),
            view.live_bytes,
            view.high_water_bytes,
            memory.certain,
            memory.note,
        )
        for op, cost, memory, view in zip(a.graph.main.operators, result.op_tail, a.kernels, views)
    )
    notes = _notes(a)
    certain = all(m.certain for m in a.kernels) and len(a.graph.subgraphs) == 1
    greedy_total = None
    if a.greedy is not None:
        unplanned = replay(
            dataclasses.replace(a.graph, offline_offsets=None),
            a.target,
            a.kernels,
            a.greedy_bytes,
            len(a.greedy),
            _BIG_ARENA,
        )
        greedy_total = unplanned.head + unplanned.tail
    estimate = ArenaEstimate(
        a.target.name,
        result.head + result.tail,
        result.head,
        result.tail,
        minimum,
        per_op,
        dict(result.tail_parts),
        certain,
        tuple(notes),
        greedy_total_bytes=greedy_total,
    )
    return estimate, views


def estimate_arena(model_bytes, target="cortex-m4") -> ArenaEstimate:
    """Predicts TFLM's arena for `model_bytes` (a .tflite flatbuffer) on `target`
    ("cortex-m4": CMSIS-NN firmware; "x86-64": the tflite-micro Python interpreter)."""
    return _estimate(_analyse(model_bytes, target))[0]


def arena_report(model_bytes, target="cortex-m4") -> ArenaReport:
    """The estimate plus, per operator, the planned buffers alive there and the head's
    high-water mark at that operator."""
    estimate, views = _estimate(_analyse(model_bytes, target))
    peak = max(views, key=lambda v: v.high_water_bytes).index if views else None
    return ArenaReport(estimate, tuple(views), peak)
